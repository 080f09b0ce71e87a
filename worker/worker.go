package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Deps are the concrete parts the composition root (cmd/attestd/compose)
// hands the worker. Each is required but Now, Registry and HTTPListening.
type Deps struct {
	NC *nats.Conn
	// Handlers builds the handlers on the worker's parts once it has
	// started (compose.Handlers).
	Handlers HandlerBuilder

	// What the worker itself needs of the store (store.go); the
	// composition root passes its one store for each.
	Setup     StoreSetup     // collections and indexes, at each start
	Snapshots SnapshotLoader // the view's starting point (the feed)
	Secrets   SecretStore    // the session-key records (the keyring)
	Pinger    Pinger         // store reachability, for /readyz
	Sweeper   Sweeper        // deletes what has expired
	Batches   BatchCounter   // the grouped-insert metrics

	MasterKey []byte // 32 bytes sealing the fleet's session keys
	Log       zerolog.Logger
	Now       func() time.Time     // default time.Now
	Registry  *prometheus.Registry // default a new one
	// HTTPListening, when set, receives the HTTP address once listening.
	HTTPListening chan<- string
}

// Worker is one attest worker process.
type Worker struct {
	cfg  Config
	d    Deps
	log  zerolog.Logger
	now  func() time.Time
	reg  *prometheus.Registry
	m    *metrics
	view *handlers.View

	// eventSig and jwksSig sign what workers share on the bus (events, the
	// JWK sets of the key-value bucket) under keys derived from the master
	// key.
	eventSig, jwksSig signer

	issuer  atomic.Pointer[domain.Issuer]
	ready   atomic.Bool
	storeOK atomic.Bool
	runners []*runner
	feed    *feed
	service micro.Service
	reads   micro.Service
	keys    *keySource
	ring    *keyring // the fleet's session-signing keys (keys.go, rotation.go)
	bg      sync.WaitGroup

	// readCalls counts reads service requests (registered once, in New).
	readCalls *prometheus.CounterVec
}

// New checks the settings and builds a worker; Run starts it.
func New(cfg Config, d Deps) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, d: d, log: d.Log, now: d.Now, reg: d.Registry,
		eventSig: newSigner(d.MasterKey, eventSigningLabel), jwksSig: newSigner(d.MasterKey, jwksSigningLabel)}
	if w.now == nil {
		w.now = time.Now
	}
	if w.reg == nil {
		w.reg = prometheus.NewRegistry()
	}
	w.view = handlers.NewView(func(id string) string {
		return w.issuer.Load().SessionToken(id).Reveal()
	})
	w.m = newMetrics(w.reg, w.view.Counts)
	w.readCalls = newReadMetrics(w.reg)
	store := d.Batches
	w.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tat_store_insert_batches_total", Help: "insertMany commands that carried grouped inserts to the store.",
		}, func() float64 { b, _ := store.BatchCounts(); return float64(b) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tat_store_batched_inserts_total", Help: "Documents inserted through grouped insertMany commands.",
		}, func() float64 { _, d := store.BatchCounts(); return float64(d) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tat_view_mapped_bytes", Help: "Memory the in-memory view has mapped outside the Go heap (its users and sessions; not counted by GOMEMLIMIT).",
		}, func() float64 { return float64(w.view.OffHeapBytes()) }))
	return w, nil
}

// View exposes the in-memory view (for tests and diagnostics).
func (w *Worker) View() *handlers.View { return w.view }

// Ready reports whether the worker takes messages.
func (w *Worker) Ready() bool { return w.notReady() == "" }

func (w *Worker) notReady() string {
	switch {
	case !w.ready.Load():
		return "starting"
	case !w.d.NC.IsConnected():
		return "nats disconnected"
	case !w.storeOK.Load():
		return "store unreachable"
	}
	return ""
}

// Run starts the worker and blocks until ctx ends; then it drains: no new
// message is taken, those in flight finish and are acknowledged, within
// DrainTimeout. Start-up faults (NATS or the store not there yet) are
// retried until ctx ends, with /healthz up and /readyz saying why.
func (w *Worker) Run(ctx context.Context) error {
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpErr := make(chan error, 1)
	go func() { httpErr <- serveHTTP(httpCtx, w.cfg.HTTPAddr, w.httpHandler(w.reg), w.d.HTTPListening) }()

	// work outlives ctx so that in-flight messages can finish while draining.
	work, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	b := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(0)), ctx)
	err := backoff.Retry(func() error {
		select {
		case err := <-httpErr:
			return backoff.Permanent(fmt.Errorf("http %s: %w", w.cfg.HTTPAddr, err))
		default:
		}
		err := w.start(ctx, work)
		if err != nil {
			w.log.Warn().Err(err).Msg("start-up not complete; retrying")
			w.stopParts()
		}
		return err
	}, b)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.ready.Store(true)
	w.log.Info().Str("http", w.cfg.HTTPAddr).Str("prefix", w.cfg.SubjectPrefix).Msg("worker ready")

	select {
	case <-ctx.Done():
	case err := <-httpErr:
		if err != nil {
			w.log.Error().Err(err).Msg("http server failed")
		}
	}
	w.ready.Store(false)
	w.log.Info().Msg("draining")
	dctx, cancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
	defer cancel()
	var drainErr error
	if w.service != nil {
		_ = w.service.Stop()
	}
	if w.reads != nil {
		_ = w.reads.Stop()
	}
	for _, r := range w.runners {
		drainErr = errors.Join(drainErr, r.drain(dctx))
	}
	stopWork()
	w.stopParts()
	w.bg.Wait()
	w.log.Info().Err(drainErr).Msg("stopped")
	return drainErr
}

func (w *Worker) stopParts() {
	if w.feed != nil {
		w.feed.stop()
		w.feed = nil
	}
	for _, r := range w.runners {
		if r.cc != nil {
			r.cc.Stop()
		}
	}
	w.runners = nil
	if w.service != nil {
		_ = w.service.Stop()
		w.service = nil
	}
	if w.reads != nil {
		_ = w.reads.Stop()
		w.reads = nil
	}
}

// startTimeout bounds each part of a start-up attempt that talks to a
// server (the snapshot load is bounded by its progress instead).
var startTimeout = 30 * time.Second

func (w *Worker) start(ctx, work context.Context) error {
	cfg := w.cfg
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := w.d.Setup.Setup(sctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	w.storeOK.Store(true)
	if d, ok := w.d.Setup.(storeDescriber); ok {
		w.log.Info().Str("layout", d.Describe()).Msg("store ready")
	}
	if !w.d.Setup.ExpiresByTTL() {
		w.log.Info().Msg("store has no TTL indexes (FerretDB): expiry is enforced by the sweeper")
	}
	if w.ring == nil {
		w.ring = newKeyring(w.d.Secrets, w.d.MasterKey, cfg, w.now)
	}
	is, err := w.ring.issuer(sctx, cfg)
	if err != nil {
		if errors.Is(err, domain.ErrWrongMasterKey) {
			return backoff.Permanent(err)
		}
		return fmt.Errorf("session keys: %w", err)
	}
	w.issuer.Store(is)
	js, err := jetstream.New(w.d.NC)
	if err != nil {
		return err
	}
	attestCons, adminCons, err := ensureStreams(sctx, js, cfg)
	if err != nil {
		return err
	}
	pub := &eventPublisher{js: js, prefix: cfg.SubjectPrefix, sig: w.eventSig}
	w.feed = &feed{js: js, stream: cfg.streams().events, view: w.view, store: w.d.Snapshots, log: w.log, now: w.now,
		sig: w.eventSig, refused: w.m.eventsRefused, refusalLog: w.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second})}
	// Not sctx: the snapshot load takes as long as the store is large
	// (feed.start bounds it by progress instead), and what follows it gets
	// a deadline of its own, which the load has not used up.
	if err := w.feed.start(ctx); err != nil {
		return err
	}
	sctx, cancel = context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if w.keys == nil {
		w.keys, err = newKeySource(sctx, cfg, js, pub, w.reg, w.now, w.log, w.profilesFor, w.jwksSig, w.m.jwksRefused)
		if err != nil {
			return err
		}
		w.bg.Add(1)
		go func() { defer w.bg.Done(); w.keys.run(work) }()
		for _, p := range w.view.Profiles() {
			if p.UsesJWKS() {
				w.keys.track(work, p.JWKSURL)
			}
		}
		w.bg.Add(3)
		go func() { defer w.bg.Done(); w.sweep(work) }()
		go func() { defer w.bg.Done(); w.watchStore(work) }()
		go func() { defer w.bg.Done(); w.runRotation(work, js, pub, cfg.SessionKeyRotation) }()
	}
	h, err := w.d.Handlers(Parts{
		Config: cfg, Now: w.now, View: w.view, Apply: func(e domain.Event) { _ = w.view.ApplyEvent(0, e) },
		Barrier: w.feed, Publisher: pub, JWKS: w.keys, SessionKeys: w.ring, Issuer: is,
		MaxReadReplyBytes: readReplyLimit(w.d.NC),
	})
	if err == nil {
		err = h.check()
	}
	if err != nil {
		return backoff.Permanent(fmt.Errorf("handlers: %w", err))
	}
	profiles, users, keys := cfg.adminSubjects()
	adminHandle, adminAbandon := runnerFuncs(bySubject(map[string]CommandHandler{profiles: h.Profiles, users: h.Users, keys: h.Keys}))
	// Every subject of the attest stream: <prefix>.attest.requests[.<app>].
	attestHandle, attestAbandon := runnerFuncs(func(string) CommandHandler { return h.Attest })
	w.runners = []*runner{
		{kind: "admin", cons: adminCons, handle: adminHandle, abandon: adminAbandon, nc: w.d.NC, js: js, cfg: cfg, log: w.log, m: w.m, concurrency: 1},
		{kind: "attest", cons: attestCons, handle: attestHandle, abandon: attestAbandon, nc: w.d.NC, js: js, cfg: cfg, log: w.log, m: w.m, concurrency: cfg.Concurrency},
	}
	for _, r := range w.runners {
		if err := r.start(work); err != nil {
			return err
		}
	}
	if w.service, err = startSessionsService(w.d.NC, cfg, h.Sessions, is, w.now, w.m, w.log); err != nil {
		return fmt.Errorf("sessions service: %w", err)
	}
	if w.reads, err = startReadsService(w.d.NC, cfg, h.Reads, w.readCalls, w.m, w.log); err != nil {
		return fmt.Errorf("reads service: %w", err)
	}
	// Ready means the server knows the service's subscriptions.
	return w.d.NC.FlushTimeout(5 * time.Second)
}

// sweep deletes expired replay claims, ended sessions and old outcomes
// from the store (FerretDB has no TTL indexes), and ended sessions from
// the view.
// endedKept is how long the view and the store keep a session after it
// ended (or was shortened to end): the sweep forgets it then, and a
// starting worker does not load it.
const endedKept = time.Hour

func (w *Worker) sweep(ctx context.Context) {
	t := time.NewTicker(w.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := w.now()
		w.view.Sweep(now.Add(-endedKept))
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := w.d.Sweeper.Sweep(sctx, now, endedKept, w.cfg.OutcomeRetention)
		cancel()
		if err != nil {
			w.log.Warn().Err(err).Msg("sweep")
			continue
		}
		w.log.Debug().Int64("deleted", n).Msg("swept")
	}
}

// watchStore pings the store so /readyz can say when it is unreachable.
func (w *Worker) watchStore(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := w.d.Pinger.Ping(pctx)
		cancel()
		if was := w.storeOK.Swap(err == nil); was != (err == nil) {
			w.log.Warn().Err(err).Bool("reachable", err == nil).Msg("store reachability changed")
		}
	}
}

// profilesFor lists the live profiles that name url.
func (w *Worker) profilesFor(url string) []string {
	var ids []string
	for _, p := range w.view.Profiles() {
		if p.JWKSURL == url {
			ids = append(ids, p.ProfileID)
		}
	}
	return ids
}
