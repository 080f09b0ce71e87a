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
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/cmd/attestd/compose"
	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/natsconn"
)

var (
	randRead = rand.Read
	// logOutput is where the log goes (tests capture it).
	logOutput io.Writer = os.Stderr

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
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv, os.Stderr))
	}
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

// run reads the settings once, starts the embedded servers where no real
// ones are named, opens the store and the NATS connection, and runs the
// worker that compose.New (the composition root) builds on them until ctx
// ends.
//
// Shutdown is the deferred calls below, which run in the reverse of their
// order here: the worker's Run returns once its consumers are drained; then
// the NATS connection is drained and waited for (whatever its subscriptions
// still handle may use the store); then the store is closed; then the
// embedded FerretDB and NATS server stop. That is why the store is opened
// before the connection.
func run(ctx context.Context, getenv func(string) string) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return fmt.Errorf("settings:\n%w", err)
	}
	if (s.NATS.URL == "" && startEmbeddedNATS == nil) || (s.MongoURI == "" && startEmbeddedFerret == nil) {
		return errNoEmbedded
	}
	log := newLogger(s)

	// The shutdown budget (TAT_SHUTDOWN_TIMEOUT) starts when ctx ends: the
	// worker's drain and the connection's share it.
	stopping := make(chan time.Time, 1)
	defer context.AfterFunc(ctx, func() { stopping <- time.Now() })()

	if s.NATS.URL == "" {
		dir := filepath.Join(s.DataDir, "nats")
		url, stop, err := startEmbeddedNATS(s.EmbeddedNATS, dir)
		if err != nil {
			return err
		}
		defer func() {
			stop()
			log.Info().Msg("embedded NATS stopped")
		}()
		s.NATS.URL = url
		log.Info().Str("url", url).Str("dir", dir).Msg("embedded NATS with JetStream started")
	}
	mongoURI := s.MongoURI
	if mongoURI == "" {
		dir := filepath.Join(s.DataDir, "ferretdb")
		uri, stop, err := startEmbeddedFerret(s.EmbeddedMongo, dir)
		if err != nil {
			return err
		}
		defer func() {
			stop()
			log.Info().Msg("embedded FerretDB stopped")
		}()
		mongoURI = uri
		log.Info().Str("uri", mongoURI).Str("dir", dir).Msg("embedded FerretDB (SQLite) started")
	}
	master, err := s.masterKey()
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}

	store, err := mongostore.Open(ctx, mongoURI, s.MongoDatabase, mongostore.WithBatching(s.StoreBatch))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := store.Close(cctx); err != nil {
			log.Warn().Err(err).Msg("store close")
			return
		}
		log.Info().Msg("store closed")
	}()

	closed := make(chan struct{})
	var closeOnce sync.Once
	nc, err := connectNATS(s.NATS, log, nats.Name("attestd"),
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if !c.IsClosed() { // closing is the shutdown, not a fault
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info().Msg("nats reconnected") }),
		nats.ErrorHandler(natsErrorLogger(log)),
		nats.ClosedHandler(func(*nats.Conn) { closeOnce.Do(func() { close(closed) }) }))
	if err != nil {
		return err
	}
	// A connection the client gives up on (the server refused the
	// credential twice while reconnecting) ends the run with the reason.
	ctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	go func() {
		select {
		case <-closed:
			cause := errors.New("the NATS connection was closed")
			if err := nc.LastError(); err != nil {
				cause = fmt.Errorf("%w: %w", cause, s.NATS.Explain(err))
			}
			lost(cause)
		case <-ctx.Done():
		}
	}()
	defer func() {
		began := time.Now()
		select {
		case began = <-stopping:
		default:
		}
		drainNATS(nc, closed, time.Until(began.Add(s.Worker.DrainTimeout)), log)
	}()

	w, err := compose.New(s.Worker, store, worker.Deps{NC: nc, MasterKey: master, Log: log})
	if err != nil {
		return err
	}
	err = w.Run(ctx)
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// connectNATS connects once, so that a refused credential or certificate
// stops start-up with one line naming the setting; when no server answers
// yet it connects again in the background (RetryOnFailedConnect), and the
// worker starts meanwhile with /readyz saying why it is not ready.
func connectNATS(s natsconn.Settings, log zerolog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	log.Info().Str("nats", s.String()).Msg("connecting to NATS")
	nc, err := s.Dial(opts...)
	if err == nil {
		return nc, nil
	}
	if natsconn.Permanent(err) {
		return nil, err
	}
	log.Warn().Err(err).Str("url", natsconn.Redact(s.URL)).Msg("NATS not reachable yet; connecting in the background")
	nc, err = s.Dial(append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	return nc, nil
}

// natsErrorLogger logs the connection's asynchronous errors (a permission
// the server's configuration does not grant, a slow consumer), at most a
// few a second.
func natsErrorLogger(log zerolog.Logger) nats.ErrHandler {
	sampled := log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		ev := sampled.Warn().Err(err)
		if sub != nil {
			ev = ev.Str("subject", sub.Subject)
		}
		ev.Msg("nats error")
	}
}

// drainNATS drains the connection (its subscriptions finish what they
// hold, its publications are flushed) and waits until it is closed, for at
// most wait (at least a second); then it closes the connection anyway.
func drainNATS(nc *nats.Conn, closed <-chan struct{}, wait time.Duration, log zerolog.Logger) {
	wait = max(wait, time.Second)
	// Drain closes the connection itself when it cannot drain (closed
	// already, or reconnecting); closed is closed either way.
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn().Err(err).Msg("nats drain")
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-closed:
		log.Info().Msg("nats connection drained")
	case <-t.C:
		nc.Close()
		log.Warn().Dur("waited", wait).Msg("nats connection not drained in time; closed")
	}
}

func newLogger(s settings) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(s.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel // not reached: loadSettings refuses other levels
	}
	var l zerolog.Logger
	if s.LogFormat == "console" {
		l = zerolog.New(zerolog.ConsoleWriter{Out: logOutput, TimeFormat: time.RFC3339})
	} else {
		l = zerolog.New(logOutput)
	}
	return l.Level(lvl).With().Timestamp().Str("service", "attestd").Logger()
}
