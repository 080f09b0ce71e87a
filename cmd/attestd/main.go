// Command attestd is the trusted-auth-token worker. With no settings it runs
// on its embedded default: an in-process NATS server with JetStream and an
// in-process FerretDB (SQLite), data under ./var. TAT_NATS_URL and
// TAT_MONGODB_URI point it at real servers instead.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/embedded"
)

var randRead = rand.Read

func main() {
	// A global of zerolog's: set once, before anything logs.
	zerolog.TimeFieldFormat = time.RFC3339
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "attestd:", err)
		os.Exit(1)
	}
}

// run is the composition root: it reads the settings once, starts the
// embedded servers where no real ones are named, builds the concrete parts
// and runs the worker until ctx ends. Shutdown drains the consumers, then
// the NATS connection, then closes the store and the embedded servers.
func run(ctx context.Context, getenv func(string) string) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return fmt.Errorf("settings:\n%w", err)
	}
	log := newLogger(s)

	natsURL := s.NATSURL
	if natsURL == "" {
		ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: s.EmbeddedNATS, StoreDir: filepath.Join(s.DataDir, "nats"), ServerName: "attestd-embedded"})
		if errors.Is(err, embedded.ErrAddrInUse) {
			return fmt.Errorf("the embedded NATS server cannot listen on %s: the port is taken; set TAT_EMBEDDED_NATS_ADDR=127.0.0.1:4223 (or TAT_NATS_URL=nats://host:4222 to use a running server)", s.EmbeddedNATS)
		}
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.URL()
		log.Info().Str("url", natsURL).Str("dir", filepath.Join(s.DataDir, "nats")).Msg("embedded NATS with JetStream started")
	}
	mongoURI := s.MongoURI
	if mongoURI == "" {
		fe, err := embedded.StartFerret(s.EmbeddedMongo, filepath.Join(s.DataDir, "ferretdb"))
		if errors.Is(err, embedded.ErrAddrInUse) {
			return fmt.Errorf("the embedded FerretDB cannot listen on %s: the port is taken; set TAT_EMBEDDED_MONGODB_ADDR=127.0.0.1:27019 (or TAT_MONGODB_URI to use a running MongoDB)", s.EmbeddedMongo)
		}
		if err != nil {
			return err
		}
		defer fe.Stop()
		mongoURI = fe.URI()
		log.Info().Str("uri", mongoURI).Str("dir", filepath.Join(s.DataDir, "ferretdb")).Msg("embedded FerretDB (SQLite) started")
	}
	master, err := s.masterKey()
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}

	nc, err := nats.Connect(natsURL, nats.Name("attestd"),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("nats disconnected") }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info().Msg("nats reconnected") }))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	store, err := mongostore.Open(ctx, mongoURI, s.MongoDatabase)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = store.Close(cctx)
	}()

	w, err := worker.New(s.Worker, worker.Deps{NC: nc, Store: store, MasterKey: master, Log: log})
	if err != nil {
		return err
	}
	err = w.Run(ctx)
	_ = nc.Drain()
	return err
}

func newLogger(s settings) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(s.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if s.LogFormat == "console" {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(lvl).With().Timestamp().Str("service", "attestd").Logger()
}
