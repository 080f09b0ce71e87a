package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// feed keeps a View current: a snapshot from the store, then every event
// after the snapshot's stream position from an ordered consumer. It is also
// the Barrier: CatchUp waits until the view has applied the events stream
// up to its last sequence at the time of the call.
type feed struct {
	js     jetstream.JetStream
	stream string
	view   *handlers.View
	store  SnapshotLoader
	log    zerolog.Logger
	now    func() time.Time
	s      jetstream.Stream
	// cc is the ordered consumer following the stream; a stuck one is
	// replaced (restartStuck), so it is read and written under ccMu.
	ccMu        sync.Mutex
	cc          jetstream.ConsumeContext
	restarting  bool
	restartedAt time.Time
	stopped     bool
	// sig checks that an event was published by a worker; refused counts
	// those that were not (by reason), refusalLog logs them (sampled).
	sig        signer
	refused    *prometheus.CounterVec
	refusalLog zerolog.Logger

	mu      sync.Mutex
	next    *round // the round callers join; it starts after they joined
	running bool
}

// loadStall is how long the snapshot load may go without a record before
// it is given up (and the start-up retried). The load as a whole has no
// deadline: its length grows with the store (a minute per 100,000 users
// on the embedded FerretDB), so a deadline would keep a large store's
// worker from ever starting, while a stalled server is caught here.
var loadStall = 30 * time.Second

var errLoadStalled = errors.New("snapshot load made no progress")

// start loads the snapshot and subscribes. Events stored before the
// snapshot's position were made after their store writes, so the snapshot
// holds them; later ones arrive on the consumer; applying by version makes
// the overlap harmless. ctx bounds nothing but the worker's life: bus
// calls take jetstream's default timeout, the load loadStall between
// records.
func (f *feed) start(ctx context.Context) error {
	s, err := f.js.Stream(ctx, f.stream)
	if err != nil {
		return fmt.Errorf("events stream: %w", err)
	}
	f.s = s
	last := s.CachedInfo().State.LastSeq
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dog := time.AfterFunc(loadStall, func() { cancel(errLoadStalled) })
	defer dog.Stop()
	stalled := func(err error) error {
		if c := context.Cause(lctx); errors.Is(c, errLoadStalled) {
			return fmt.Errorf("%w (%s without a record): %w", c, loadStall, err)
		}
		return err
	}
	profiles, err := f.store.LoadProfiles(lctx)
	if err != nil {
		return stalled(err)
	}
	dog.Reset(loadStall)
	for _, r := range profiles {
		f.view.PutProfile(r.Profile, r.Deleted)
	}
	nUsers := 0
	if err := f.store.EachUser(lctx, func(r domain.UserRecord) error {
		dog.Reset(loadStall)
		f.view.PutUser(r.User, r.Deleted)
		nUsers++
		return nil
	}); err != nil {
		return stalled(err)
	}
	// Every revision is put and the view keeps each session's latest;
	// then the latest decides: a session whose latest revision ended
	// longer than endedKept ago goes, even if an older revision ends later
	// (the view's and the store's sweep, below, by the same rule).
	if err := f.store.EachSession(lctx, func(st domain.SessionState) error {
		dog.Reset(loadStall)
		f.view.PutSession(st)
		return nil
	}); err != nil {
		return stalled(err)
	}
	dog.Stop()
	f.view.Sweep(f.now().Add(-endedKept))
	_, _, nSessions := f.view.Counts()
	nProfiles := len(profiles)
	f.view.MarkSeq(last)
	if err := f.follow(ctx, last+1); err != nil {
		return err
	}
	// The load's garbage (every stored document, decoded twice) made the
	// heap grow far past what the worker keeps, and the collector's goal
	// is twice what was live at its last cycle, which may have run amid
	// the load: give those pages back now rather than hold them until an
	// idle worker's next cycle (up to two minutes), so a restarted
	// worker's resident memory is its view and what it works with (the
	// view itself is outside the Go heap: handlers/viewmem.go).
	debug.FreeOSMemory()
	f.log.Info().Int("profiles", nProfiles).Int("users", nUsers).Int("sessions", nSessions).
		Uint64("events_seq", last).Msg("view loaded")
	return nil
}

// apply applies one event of the stream to the view, if a worker signed
// it (its subject and exact bytes) and it decodes strictly. Any other
// message only advances the view's sequence, so catching up never waits
// for it: events published by anyone else change nothing.
//
// Events stored before this worker started are never applied (the view is
// loaded from the store at start, then follows from the stream's end), so
// unsigned events of an earlier version left in the stream are harmless;
// unsigned events published after the start (by a worker of an earlier
// version, during a rolling upgrade) are refused.
func (f *feed) apply(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	seq := md.Sequence.Stream
	sig := m.Headers().Get(SignatureHeader)
	var e domain.Event
	switch {
	case sig == "":
		f.refuse(seq, m.Subject(), "unsigned", nil)
		return
	case !f.sig.verify(sig, []byte(m.Subject()), m.Data()):
		f.refuse(seq, m.Subject(), "bad_signature", nil)
		return
	}
	if err := domain.DecodeStrictBus(m.Data(), &e, 0); err != nil {
		f.refuse(seq, m.Subject(), "malformed", err)
		return
	}
	if err := f.view.ApplyEvent(seq, e); err != nil {
		f.log.Warn().Err(err).Uint64("seq", seq).Msg("event not applied")
	}
}

// refuse skips an event with a warning (a few a second at most) and a
// metric.
func (f *feed) refuse(seq uint64, subject, reason string, err error) {
	f.view.MarkSeq(seq)
	f.refused.WithLabelValues(reason).Inc()
	f.refusalLog.Warn().Err(err).Uint64("seq", seq).Str("subject", subject).Str("reason", reason).
		Msg("event refused: not published by a worker of this fleet, or not valid; the view ignores it")
}

// CatchUp waits (up to 5 s) until the view has applied every event stored
// before the call.
func (f *feed) CatchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	last, err := f.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("events stream info: %w", err)
	}
	at := f.view.Seq()
	err = f.view.WaitSeq(ctx, last)
	if err != nil && f.view.Seq() == at && ctx.Err() != nil {
		// The view did not move at all while the stream had more: the
		// ordered consumer may be stuck (seen after a cluster node holding
		// the stream died). Follow the stream again from the view.
		f.restartStuck()
	}
	return err
}

// follow starts (or restarts) the ordered consumer that applies the events
// stream to the view from sequence from on; a consumer it replaces is
// stopped. Events applied twice are harmless: the view applies by version.
func (f *feed) follow(ctx context.Context, from uint64) error {
	oc, err := f.js.OrderedConsumer(ctx, f.stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return fmt.Errorf("events consumer: %w", err)
	}
	cc, err := oc.Consume(f.apply)
	if err != nil {
		return fmt.Errorf("consume events: %w", err)
	}
	f.ccMu.Lock()
	if f.stopped {
		f.ccMu.Unlock()
		cc.Stop()
		return nil
	}
	old := f.cc
	f.cc = cc
	f.ccMu.Unlock()
	if old != nil {
		old.Stop()
	}
	return nil
}

// restartStuck re-follows the events stream from the view's position, at
// most once per stuckRestartEvery, however many callers found it stuck.
func (f *feed) restartStuck() {
	f.ccMu.Lock()
	if time.Since(f.restartedAt) < stuckRestartEvery || f.restarting {
		f.ccMu.Unlock()
		return
	}
	f.restarting = true
	f.ccMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from := f.view.Seq() + 1
	err := f.follow(ctx, from)
	f.ccMu.Lock()
	f.restarting, f.restartedAt = false, time.Now()
	f.ccMu.Unlock()
	if err != nil {
		f.log.Warn().Err(err).Uint64("from_seq", from).Msg("events consumer stuck; restart failed, will retry")
		return
	}
	f.log.Warn().Uint64("from_seq", from).Msg("events consumer stuck; restarted from the view's position")
}

// stuckRestartEvery bounds how often a stuck events consumer is restarted.
const stuckRestartEvery = 5 * time.Second

// round is one stream-info request shared by the callers that joined it.
type round struct {
	done chan struct{}
	seq  uint64
	err  error
}

// lastSeq returns the events stream's last sequence as read after the call
// began. Concurrent callers share rounds: a caller joins the round that has
// not started yet, and one request serves them all, so a flood of lookups
// that miss costs one JetStream API call per round trip, not one each.
func (f *feed) lastSeq(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	if f.next == nil {
		f.next = &round{done: make(chan struct{})}
	}
	r := f.next
	if !f.running {
		f.running = true
		go f.runRounds()
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runRounds serves waiting rounds one after another, then ends.
func (f *feed) runRounds() {
	for {
		f.mu.Lock()
		r := f.next
		f.next = nil
		if r == nil {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := f.s.Info(ctx)
		cancel()
		if err != nil {
			r.err = err
		} else {
			r.seq = info.State.LastSeq
		}
		close(r.done)
	}
}

func (f *feed) stop() {
	f.ccMu.Lock()
	cc := f.cc
	f.cc, f.stopped = nil, true
	f.ccMu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}
