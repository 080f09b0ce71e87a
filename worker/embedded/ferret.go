package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Ferret is an in-process FerretDB on SQLite.
type Ferret struct {
	f       *ferretdb.FerretDB
	cancel  context.CancelFunc
	done    chan struct{}
	uri     string
	indexer *idIndexer
	idxDone chan struct{}
}

// StartFerret starts FerretDB listening on addr (port 0: a free one) with
// its SQLite files under dir, and waits until it accepts connections.
func StartFerret(addr, dir string) (*Ferret, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, port, _ := net.SplitHostPort(addr); port != "0" {
		if err := probe(addr); err != nil {
			return nil, err
		}
	} else {
		free, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		addr = free
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Handler:  "sqlite",
		// cache_size: 512 KiB of page cache per connection, against
		// SQLite's 2,000 KiB: on FerretDB the store keeps each collection
		// in a file of its own (decision 0005), each with its
		// connections, and the smaller caches keep the resident memory
		// where it was with one file.
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(normal)&_pragma=cache_size(-512)",
		// Nothing FerretDB logs is shown (the level was above every level
		// it uses). A discarding handler also skips the work a text
		// handler does on Logger.With even when the level is off: FerretDB
		// calls it twice per SQL statement with the statement's arguments
		// (the documents), which cost about 7% of the CPU of an attest.
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fe := &Ferret{f: f, cancel: cancel, done: make(chan struct{}), uri: "mongodb://" + addr + "/",
		indexer: newIDIndexer(abs), idxDone: make(chan struct{})}
	go func() {
		defer close(fe.done)
		_ = f.Run(ctx)
	}()
	interval := idIndexInterval
	go func() {
		defer close(fe.idxDone)
		fe.indexer.run(ctx, interval)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return fe, nil
		}
		if time.Now().After(deadline) {
			fe.Stop()
			return nil, errors.New("ferretdb did not accept connections within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URI is the MongoDB connection string.
func (f *Ferret) URI() string { return f.uri }

// IndexIDs gives every collection that exists now the index FerretDB's
// lookups by _id can use (see idIndexer); the server does it by itself
// every second. It returns the first error met.
func (f *Ferret) IndexIDs(ctx context.Context) error { return f.indexer.pass(ctx) }

// Stop stops the server and waits for it.
func (f *Ferret) Stop() {
	f.cancel()
	<-f.done
	<-f.idxDone
}
