// Command attestd is the trusted-auth-token worker. TAT_NATS_URL and
// TAT_MONGODB_URI point it at real servers. Built with -tags embedded (make
// run), it runs on its embedded default when they are unset: an in-process
// NATS server with JetStream and an in-process FerretDB (SQLite), data under
// ./var. The production build (make build, the Dockerfile) links neither
// server and refuses to start without both URLs.
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
)

var (
	randRead = rand.Read

	// startEmbeddedNATS and startEmbeddedFerret start one embedded server
	// listening on addr with its files under dir, and return its URL and
	// how to stop it. They are nil unless attestd is built with -tags
	// embedded (embedded.go), so the production binary links no server.
	startEmbeddedNATS, startEmbeddedFerret func(addr, dir string) (url string, stop func(), err error)
)

// errNoEmbedded is the start-up error of a production attestd that is
// given no servers.
var errNoEmbedded = errors.New("this attestd was built without the embedded servers; set TAT_NATS_URL and TAT_MONGODB_URI (or build with -tags embedded)")

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
	if (s.NATSURL == "" && startEmbeddedNATS == nil) || (s.MongoURI == "" && startEmbeddedFerret == nil) {
		return errNoEmbedded
	}
	log := newLogger(s)

	natsURL := s.NATSURL
	if natsURL == "" {
		dir := filepath.Join(s.DataDir, "nats")
		url, stop, err := startEmbeddedNATS(s.EmbeddedNATS, dir)
		if err != nil {
			return err
		}
		defer stop()
		natsURL = url
		log.Info().Str("url", natsURL).Str("dir", dir).Msg("embedded NATS with JetStream started")
	}
	mongoURI := s.MongoURI
	if mongoURI == "" {
		dir := filepath.Join(s.DataDir, "ferretdb")
		uri, stop, err := startEmbeddedFerret(s.EmbeddedMongo, dir)
		if err != nil {
			return err
		}
		defer stop()
		mongoURI = uri
		log.Info().Str("uri", mongoURI).Str("dir", dir).Msg("embedded FerretDB (SQLite) started")
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
