// Package workertest starts real servers for integration tests: an
// in-process NATS server with JetStream and an in-process FerretDB, each on
// a free port with its files in a temporary directory, and workers on them.
// Nothing is mocked.
package workertest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/cmd/attestd/compose"
	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/embedded"
)

// Env is a NATS server and a store shared by the workers of one test.
type Env struct {
	T         testing.TB
	NATS      *embedded.NATS
	Ferret    *embedded.Ferret
	NATSURL   string
	MongoURI  string
	Database  string
	MasterKey []byte
	NC        *nats.Conn
	JS        jetstream.JetStream
	Prefix    string
	// Shipped is the server of NewShippedEnv (nil for NewEnv).
	Shipped *ShippedNATS
	// connOpts are added to Connect's options: the worker identity's
	// credentials and TLS on a shipped server.
	connOpts []nats.Option
}

// NewEnv starts the servers; they stop when the test ends.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	dir := t.TempDir()
	ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: "127.0.0.1:0", StoreDir: dir + "/nats"})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	e := newEnv(t, dir, ns.URL())
	e.NATS = ns
	e.NC = e.Connect()
	e.JS, _ = jetstream.New(e.NC)
	return e
}

// NewShippedEnv is NewEnv on a NATS server started from the shipped
// configuration (StartShippedNATS): Connect, and so every worker, logs in
// as the worker identity; NC and JS are the admin's (As gives the others).
// It sets environment variables, so the calling test cannot be parallel.
func NewShippedEnv(t testing.TB) *Env {
	t.Helper()
	sn := StartShippedNATS(t)
	e := newEnv(t, t.TempDir(), sn.URL)
	e.Shipped = sn
	opts, err := sn.Settings("worker").Options()
	if err != nil {
		t.Fatal(err)
	}
	e.connOpts = opts
	return e.As("admin")
}

// As returns a copy of a shipped Env whose NC and JS are identity id's.
func (e *Env) As(id string) *Env {
	e.T.Helper()
	c := *e
	c.NC = e.Shipped.Connect(id, nil)
	c.JS, _ = jetstream.New(c.NC)
	return &c
}

func newEnv(t testing.TB, dir, natsURL string) *Env {
	fe, err := embedded.StartFerret("127.0.0.1:0", dir+"/ferret")
	if err != nil {
		t.Fatalf("start ferretdb: %v", err)
	}
	t.Cleanup(fe.Stop)
	e := &Env{T: t, Ferret: fe, NATSURL: natsURL, MongoURI: fe.URI(), Database: "tat", Prefix: "tat"}
	e.MasterKey = make([]byte, 32)
	_, _ = rand.Read(e.MasterKey)
	return e
}

// Connect opens a client connection closed at the end of the test.
func (e *Env) Connect() *nats.Conn {
	opts := append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.RetryOnFailedConnect(true)}, e.connOpts...)
	nc, err := nats.Connect(e.NATSURL, opts...)
	if err != nil {
		e.T.Fatalf("connect nats: %v", err)
	}
	e.T.Cleanup(nc.Close)
	return nc
}

// Worker is a running worker.
type Worker struct {
	W      *worker.Worker
	HTTP   string
	Logs   *SyncBuffer
	Store  *mongostore.Store
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// SyncBuffer is a log sink safe for concurrent writes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns everything written.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Config returns test settings: fast retries, a free HTTP port, local JWKS.
func (e *Env) Config() worker.Config {
	c := worker.Defaults()
	c.SubjectPrefix = e.Prefix
	c.HTTPAddr = "127.0.0.1:0"
	c.RetryBase = 50 * time.Millisecond
	c.RetryMax = 500 * time.Millisecond
	c.DrainTimeout = 10 * time.Second
	c.JWKSAllowLocal = true
	c.Concurrency = 16
	return c
}

// Store opens a store client for the test (closed at the end).
func (e *Env) Store() *mongostore.Store {
	s, err := mongostore.Open(context.Background(), e.MongoURI, e.Database)
	if err != nil {
		e.T.Fatalf("open store: %v", err)
	}
	e.T.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// StartWorker starts a worker with cfg (nil: Config()) and waits until it
// is ready. Its logs go to Logs (and to the test log on failure).
func (e *Env) StartWorker(mod func(*worker.Config), now func() time.Time) *Worker {
	e.T.Helper()
	s := e.Store()
	return e.StartWorkerOn(s, s, mod, now)
}

// StartWorkerOn is StartWorker on a store of the caller's: store, which
// wraps base (the Worker's Store).
func (e *Env) StartWorkerOn(store compose.Store, base *mongostore.Store, mod func(*worker.Config), now func() time.Time) *Worker {
	e.T.Helper()
	cfg := e.Config()
	if mod != nil {
		mod(&cfg)
	}
	logs := &SyncBuffer{}
	nc := e.Connect()
	listening := make(chan string, 1)
	// attestd's own wiring (cmd/attestd/compose): the tests run the handlers
	// production runs.
	w, err := compose.New(cfg, store, worker.Deps{NC: nc, MasterKey: e.MasterKey,
		Log: zerolog.New(io.MultiWriter(logs)).Level(zerolog.DebugLevel).With().Timestamp().Logger(), Now: now, HTTPListening: listening})
	if err != nil {
		e.T.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tw := &Worker{W: w, Logs: logs, Store: base, cancel: cancel, done: make(chan error, 1)}
	go func() { tw.done <- w.Run(ctx) }()
	select {
	case tw.HTTP = <-listening:
	case <-time.After(30 * time.Second):
		e.T.Fatal("worker http did not listen")
	}
	deadline := time.Now().Add(60 * time.Second)
	for !w.Ready() {
		if time.Now().After(deadline) {
			e.T.Fatalf("worker not ready; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.T.Cleanup(func() { tw.Stop() })
	return tw
}

// Stop drains the worker and waits for it.
func (w *Worker) Stop() error {
	var err error
	w.once.Do(func() {
		w.cancel()
		err = <-w.done
	})
	return err
}

// Request publishes a command to subject via JetStream with a
// Tat-Reply-To inbox and returns the decoded reply.
func (e *Env) Request(subject string, msgID string, payload any) map[string]any {
	e.T.Helper()
	raw := e.RequestRaw(subject, msgID, payload)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.T.Fatalf("reply is not JSON: %v: %s", err, raw)
	}
	return out
}

// RequestRaw is Request without decoding.
func (e *Env) RequestRaw(subject string, msgID string, payload any) []byte {
	e.T.Helper()
	var body []byte
	switch p := payload.(type) {
	case []byte:
		body = p
	case string:
		body = []byte(p)
	default:
		body, _ = json.Marshal(p)
	}
	inbox := e.NC.NewInbox()
	sub, err := e.NC.SubscribeSync(inbox)
	if err != nil {
		e.T.Fatal(err)
	}
	defer sub.Unsubscribe()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(worker.ReplyHeader, inbox)
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.JS.PublishMsg(ctx, msg); err != nil {
		e.T.Fatalf("publish %s: %v", subject, err)
	}
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		e.T.Fatalf("no reply on %s: %v", subject, err)
	}
	return m.Data
}

// Subject returns prefix.parts...
func (e *Env) Subject(parts ...string) string {
	s := e.Prefix
	for _, p := range parts {
		s += "." + p
	}
	return s
}

// Events returns every event stored in the events stream so far.
func (e *Env) Events() []domain.Event {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("%s_EVENTS", upper(e.Prefix))
	s, err := e.JS.Stream(ctx, name)
	if err != nil {
		e.T.Fatalf("events stream: %v", err)
	}
	last := s.CachedInfo().State.LastSeq
	var out []domain.Event
	if last == 0 {
		return out
	}
	c, err := e.JS.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		e.T.Fatal(err)
	}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			e.T.Fatalf("read events: %v", err)
		}
		var ev domain.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			e.T.Fatalf("event is not JSON: %s", m.Data())
		}
		out = append(out, ev)
		md, _ := m.Metadata()
		if md.Sequence.Stream >= last {
			return out
		}
	}
}

// RawStreamData returns the raw payloads of every message in stream.
func (e *Env) RawStreamData(stream string) [][]byte {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.JS.Stream(ctx, stream)
	if err != nil {
		e.T.Fatalf("stream %s: %v", stream, err)
	}
	info, _ := s.Info(ctx)
	var out [][]byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out = append(out, m.Data)
	}
	return out
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
