#!/usr/bin/env bash
# Throughput and latency benchmarks, on the embedded servers of this machine.
#   scripts/bench.sh            # default: 3 runs of each
#   COUNT=5 BENCHTIME=3000x scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-3}"
BENCHTIME="${BENCHTIME:-2000x}"
echo "== token checklist (domain), no I/O"
go test -run='^$' -bench='^BenchmarkVerifyToken$' -benchmem -count="$COUNT" ./worker/
echo "== attest end to end (NATS JetStream + FerretDB, one worker)"
go test -run='^$' -bench='^BenchmarkAttest$' -benchtime="$BENCHTIME" -count="$COUNT" -timeout 30m ./worker/
echo "== profile change reaching two workers' in-memory views"
go test -run='^$' -bench='^BenchmarkProfilePropagation$' -benchtime=200x -count="$COUNT" ./worker/
