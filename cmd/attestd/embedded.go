//go:build embedded

package main

import "github.com/tat-worker/attest/cmd/attestd/internal/inprocess"

// Built with -tags embedded (make run, make build-dev): with no
// TAT_NATS_URL or TAT_MONGODB_URI, attestd runs that server in-process.
func init() {
	startEmbeddedNATS, startEmbeddedFerret = inprocess.StartNATS, inprocess.StartFerret
}
