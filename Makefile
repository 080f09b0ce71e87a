# The two commands of the README: `make run` and `make test`.
# Everything they need comes from the Go module proxy (go is on the machine).

GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...

# Modules only the embedded servers bring (FerretDB with its SQL drivers,
# nats-server): the production attestd must link none of them.
EMBEDDED_MODULES := github.com/FerretDB/|github.com/nats-io/nats-server/|modernc.org/sqlite|github.com/SAP/go-hdb|github.com/jackc/pgx/|github.com/go-sql-driver/mysql

.PHONY: run test test-unit test-fuzz test-chaos vet build build-dev check-deps bench clean

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

clean:
	rm -rf bin var
