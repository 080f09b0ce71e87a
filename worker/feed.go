package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// snapshotLoader reads what the store holds, for the feed's start.
type snapshotLoader interface {
	LoadProfiles(ctx context.Context) ([]domain.ProfileRecord, error)
	LoadUsers(ctx context.Context) ([]domain.UserRecord, error)
	LoadSessions(ctx context.Context, since time.Time) ([]domain.SessionState, error)
}

// feed keeps a View current: a snapshot from the store, then every event
// after the snapshot's stream position from an ordered consumer. It is also
// the Barrier: CatchUp waits until the view has applied the events stream
// up to its last sequence at the time of the call.
type feed struct {
	js     jetstream.JetStream
	stream string
	view   *handlers.View
	store  snapshotLoader
	log    zerolog.Logger
	now    func() time.Time
	cc     jetstream.ConsumeContext
	s      jetstream.Stream
	// sig checks that an event was published by a worker; refused counts
	// those that were not (by reason), refusalLog logs them (sampled).
	sig        signer
	refused    *prometheus.CounterVec
	refusalLog zerolog.Logger

	mu      sync.Mutex
	next    *round // the round callers join; it starts after they joined
	running bool
}

// start loads the snapshot and subscribes. Events stored before the
// snapshot's position were made after their store writes, so the snapshot
// holds them; later ones arrive on the consumer; applying by version makes
// the overlap harmless.
func (f *feed) start(ctx context.Context) error {
	s, err := f.js.Stream(ctx, f.stream)
	if err != nil {
		return fmt.Errorf("events stream: %w", err)
	}
	f.s = s
	last := s.CachedInfo().State.LastSeq
	profiles, err := f.store.LoadProfiles(ctx)
	if err != nil {
		return err
	}
	for _, r := range profiles {
		f.view.PutProfile(r.Profile, r.Deleted)
	}
	users, err := f.store.LoadUsers(ctx)
	if err != nil {
		return err
	}
	for _, r := range users {
		f.view.PutUser(r.User, r.Deleted)
	}
	sessions, err := f.store.LoadSessions(ctx, f.now().Add(-time.Hour))
	if err != nil {
		return err
	}
	for _, st := range sessions {
		f.view.PutSession(st)
	}
	f.view.MarkSeq(last)
	oc, err := f.js.OrderedConsumer(ctx, f.stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1,
	})
	if err != nil {
		return fmt.Errorf("events consumer: %w", err)
	}
	f.cc, err = oc.Consume(f.apply)
	if err != nil {
		return fmt.Errorf("consume events: %w", err)
	}
	f.log.Info().Int("profiles", len(profiles)).Int("users", len(users)).Int("sessions", len(sessions)).
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
	return f.view.WaitSeq(ctx, last)
}

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
	if f.cc != nil {
		f.cc.Stop()
	}
}
