# The two commands of the README: `make run` and `make test`.
# Everything they need comes from the Go module proxy (go is on the machine).

GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...

.PHONY: run test test-unit test-fuzz test-chaos vet build bench clean

## run: the worker on its embedded default (NATS + FerretDB in-process, data under ./var)
run:
	$(GO) run ./cmd/attestd

## build: binaries into ./bin
build:
	$(GO) build -o bin/attestd ./cmd/attestd
	$(GO) build -o bin/attestctl ./cmd/attestctl

vet:
	$(GO) vet $(PKGS)
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## test: vet, gofmt, every unit and integration test with the race detector, a short fuzz run
test: vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) test-fuzz

## test-fuzz: each fuzz target for FUZZTIME on its committed seed corpus and beyond
test-fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzPrecheckToken$$' -fuzztime=$(FUZZTIME) ./domain
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyToken$$' -fuzztime=$(FUZZTIME) ./domain
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeAttestRequest$$' -fuzztime=$(FUZZTIME) ./domain
	$(GO) test -run='^$$' -fuzz='^FuzzJSONDepth$$' -fuzztime=$(FUZZTIME) ./domain

## test-chaos: crash, outage, fleet and cluster tests (longer; .ci/run runs them)
test-chaos:
	$(GO) test -race -count=1 -timeout 30m -tags chaos -run 'Chaos' ./worker/chaos/...

## bench: attest throughput and latency (see scripts/bench.sh)
bench:
	./scripts/bench.sh

clean:
	rm -rf bin var
