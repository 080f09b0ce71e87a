# The two commands of the README: `make run` and `make test`.
# Everything they need comes from the Go module proxy (go is on the machine).

GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...

# Modules only the embedded servers bring (FerretDB with its SQL drivers,
# nats-server): the production attestd must link none of them.
EMBEDDED_MODULES := github.com/FerretDB/|github.com/nats-io/nats-server/|modernc.org/sqlite|github.com/SAP/go-hdb|github.com/jackc/pgx/|github.com/go-sql-driver/mysql

.PHONY: run test test-unit test-fuzz test-chaos vet build build-dev check-deps bench mutate clean

## run: the worker on its embedded default (NATS + FerretDB in-process, data under ./var)
run:
	$(GO) run -tags embedded ./cmd/attestd

## build: production binaries into ./bin (attestd without the embedded servers:
## it needs TAT_NATS_URL and TAT_MONGODB_URI)
build:
	$(GO) build -o bin/attestd ./cmd/attestd
	$(GO) build -o bin/attestctl ./cmd/attestctl

## build-dev: bin/attestd-dev, which runs the embedded default as make run does
build-dev:
	$(GO) build -tags embedded -o bin/attestd-dev ./cmd/attestd

## check-deps: go.mod and go.sum are tidy, and the production attestd links no embedded server
check-deps: build
	$(GO) mod tidy -diff
	@out="$$($(GO) version -m bin/attestd | awk '$$1 == "dep" || $$1 == "=>" { print $$2 }' | grep -E '^($(EMBEDDED_MODULES))' || true)"; \
	if [ -n "$$out" ]; then echo "bin/attestd links embedded-server modules:"; echo "$$out"; exit 1; fi
	@echo "bin/attestd links no embedded server"

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags embedded ./cmd/attestd/
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## test: vet, gofmt, every unit and integration test with the race detector, a short fuzz run
test: vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) test-fuzz

## test-fuzz: each fuzz target for FUZZTIME on its committed seed corpus and beyond
## (scripts/fuzz.sh retries once only the engine's own deadline error, never a failing input)
test-fuzz:
	GO=$(GO) ./scripts/fuzz.sh FuzzPrecheckToken $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzVerifyToken $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzDecodeAttestRequest $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzParseSessionJWT $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzJSONDepth $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzDifferentialJWX $(FUZZTIME)

## test-chaos: crash, outage, fleet and cluster tests (longer; .ci/run runs them)
test-chaos:
	$(GO) test -race -count=1 -timeout 30m -tags chaos -run 'Chaos' ./worker/chaos/...

## bench: the stack end to end, driven from another process: throughput, latency,
## CPU and memory per attest, restart time (report in docs/; see scripts/bench.sh)
BENCH_FLAGS ?=
bench:
	./scripts/bench.sh $(BENCH_FLAGS)

## mutate: mutation testing (gremlins, pinned) of domain/ and handlers/, each on its own
## tests; fails under 95 % test efficacy for domain/, 85 % for handlers/. Takes tens of
## minutes: not in CI, run before a release (figures in docs/BENCHMARKS.md).
## MUTATE_WORKERS=1 by default: each worker builds and runs a package's tests per mutant.
GREMLINS_VERSION ?= v0.6.0
MUTATE_WORKERS   ?= 1
# A mutant's tests may take 8 times the baseline run before it counts as timed out
# (gremlins' default of 3 times misreads a busy machine as a mutant that loops).
MUTATE_TIMEOUT_COEFFICIENT ?= 8
GREMLINS         := $(GO) run github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
# -count=1: gremlins times its baseline `go test -cover` run to set each mutant's
# timeout; a cached result would make that timeout about a second.
# gremlins fails when efficacy <= the threshold, so exactly 95.00 % fails too.
mutate:
	@rc=0; \
	for spec in domain:95 handlers:85; do \
		pkg=$${spec%%:*}; min=$${spec##*:}; \
		echo "== gremlins $(GREMLINS_VERSION) on ./$$pkg (its own tests), efficacy must exceed $$min %"; \
		GOFLAGS="$(GOFLAGS) -count=1" $(GREMLINS) unleash --workers $(MUTATE_WORKERS) \
			--timeout-coefficient $(MUTATE_TIMEOUT_COEFFICIENT) \
			--output-statuses lt --threshold-efficacy $$min ./$$pkg || { rc=1; echo "== ./$$pkg: FAILED"; }; \
	done; \
	exit $$rc

clean:
	rm -rf bin var
