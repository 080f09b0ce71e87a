#!/usr/bin/env bash
# make bench: the worker end to end on this machine, as a client sees it.
#
#   scripts/bench.sh                    # split stack (attestd + a NATS/FerretDB process), default sizes
#   scripts/bench.sh -embedded          # the embedded default, all in one process (make run's attestd)
#   scripts/bench.sh -users 100000 -attests 50000 -inflight 1024
#   TAT_WORKER_CONCURRENCY=64 scripts/bench.sh   # TAT_* settings reach the worker
#   scripts/bench.sh -nats nats://... -mongodb mongodb://...   # external servers
#   scripts/bench.sh micro              # the go test benchmarks (token checklist, in-process attest, propagation)
#   scripts/bench.sh profile            # CPU profile of attest end to end, in-process: pprof -top
#
# attestbench writes docs/bench-report.md and docs/bench-report-latency.svg
# (-out, -name) and prints where they are. Run it on an idle machine: it
# records the load average next to every number because the numbers move
# with it.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-3}"
BENCHTIME="${BENCHTIME:-2000x}"

case "${1:-}" in
micro)
	echo "== token checklist (domain), no I/O"
	go test -run='^$' -bench='^BenchmarkVerifyToken$' -benchmem -count="$COUNT" ./worker/
	echo "== attest end to end (NATS JetStream + FerretDB + worker in one test process)"
	go test -run='^$' -bench='^BenchmarkAttest$' -benchtime="$BENCHTIME" -count="$COUNT" -timeout 30m ./worker/
	echo "== profile change reaching two workers' in-memory views"
	go test -run='^$' -bench='^BenchmarkProfilePropagation$' -benchtime=200x -count="$COUNT" ./worker/
	echo "== in-memory view: bytes per user with one session, and loading it from the store"
	go test -run='^$' -bench='^BenchmarkView(Memory|Load)$' -benchtime=1x -count=1 ./handlers/ ./repo/mongostore/
	echo "== in-memory view: an attest's reads and write in a view of 100,000 users"
	go test -run='^$' -bench='^BenchmarkViewReads$' -benchmem -count="$COUNT" ./handlers/
	exit 0
	;;
profile)
	out="${PROFILE_OUT:-/tmp/attest-cpu.pprof}"
	echo "== CPU profile of BenchmarkAttest/session (worker, NATS and FerretDB in one process) -> $out"
	go test -run='^$' -bench='^BenchmarkAttest$/^session$' -benchtime="${BENCHTIME}" -count=1 -timeout 30m -cpuprofile "$out" -o /tmp/worker.test ./worker/
	go tool pprof -top -nodecount=40 /tmp/worker.test "$out"
	echo "== cumulative, grouped by package"
	go tool pprof -top -cum -nodecount=40 /tmp/worker.test "$out"
	exit 0
	;;
esac

mkdir -p bin
attestd=bin/attestd
for a in "$@"; do
	if [ "$a" = "-embedded" ] || [ "$a" = "--embedded" ]; then
		attestd=bin/attestd-dev
	fi
done
if [ "$attestd" = bin/attestd-dev ]; then
	go build -tags embedded -o bin/attestd-dev ./cmd/attestd
else
	go build -o bin/attestd ./cmd/attestd
fi
go build -o bin/attestbench ./cmd/attestbench
exec bin/attestbench -attestd "$attestd" "$@"
