package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/repo/mongostore"
)

// feed keeps a View current: a snapshot from the store, then every event
// after the snapshot's stream position from an ordered consumer. It is also
// the Barrier: CatchUp waits until the view has applied the events stream
// up to its last sequence at the time of the call.
type feed struct {
	js     jetstream.JetStream
	stream string
	view   *handlers.View
	store  *mongostore.Store
	log    zerolog.Logger
	now    func() time.Time
	cc     jetstream.ConsumeContext
	s      jetstream.Stream
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

func (f *feed) apply(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	var e domain.Event
	if err := json.Unmarshal(m.Data(), &e); err != nil {
		f.log.Warn().Uint64("seq", md.Sequence.Stream).Msg("event is not JSON; skipped")
		f.view.MarkSeq(md.Sequence.Stream)
		return
	}
	if err := f.view.ApplyEvent(md.Sequence.Stream, e); err != nil {
		f.log.Warn().Err(err).Uint64("seq", md.Sequence.Stream).Msg("event not applied")
	}
}

// CatchUp waits (up to 5 s) until the view has applied every event stored
// before the call.
func (f *feed) CatchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := f.s.Info(ctx)
	if err != nil {
		return fmt.Errorf("events stream info: %w", err)
	}
	return f.view.WaitSeq(ctx, info.State.LastSeq)
}

func (f *feed) stop() {
	if f.cc != nil {
		f.cc.Stop()
	}
}
