// Package inprocess starts attestd's embedded default: an in-process NATS
// server with JetStream and an in-process FerretDB (SQLite). Only an attestd
// built with -tags embedded (make run, make build-dev) and the tests of
// cmd/attestd link it; the production attestd (make build, the Dockerfile)
// does not, and so carries no server and no SQL driver.
package inprocess

import (
	"errors"
	"fmt"

	"github.com/tat-worker/attest/worker/embedded"
)

// StartNATS starts the embedded NATS server with JetStream on addr, its
// files under dir. A taken port is one line naming the setting that moves it.
func StartNATS(addr, dir string) (url string, stop func(), err error) {
	ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: addr, StoreDir: dir, ServerName: "attestd-embedded"})
	if errors.Is(err, embedded.ErrAddrInUse) {
		return "", nil, fmt.Errorf("the embedded NATS server cannot listen on %s: the port is taken; set TAT_EMBEDDED_NATS_ADDR=127.0.0.1:4223 (or TAT_NATS_URL=nats://host:4222 to use a running server)", addr)
	}
	if err != nil {
		return "", nil, err
	}
	return ns.URL(), ns.Shutdown, nil
}

// StartFerret starts the embedded FerretDB on addr, its SQLite files under
// dir. A taken port is one line naming the setting that moves it.
func StartFerret(addr, dir string) (uri string, stop func(), err error) {
	fe, err := embedded.StartFerret(addr, dir)
	if errors.Is(err, embedded.ErrAddrInUse) {
		return "", nil, fmt.Errorf("the embedded FerretDB cannot listen on %s: the port is taken; set TAT_EMBEDDED_MONGODB_ADDR=127.0.0.1:27019 (or TAT_MONGODB_URI to use a running MongoDB)", addr)
	}
	if err != nil {
		return "", nil, err
	}
	return fe.URI(), fe.Stop, nil
}
