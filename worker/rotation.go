package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Rotation of the session-signing keys.
//
// A rotation inserts the record of key n+1 (n the newest) under its unique
// name, session-key-<n+1>, with its times fixed there (domain.PlanRotation):
// published from now, signing after the publish window, and key n retired
// a JWT lifetime plus the clock skew after that. Two workers rotating at
// once (the schedule fires on both, or a command races the schedule) both
// try to insert n+1: one insert wins and the other worker adopts its
// record, so there is never more than one key n+1, and never two signing
// keys. Nothing is updated, ever.
//
// How workers learn of a new key: the worker that rotates loads it at
// once; the others re-read the records when the rotated event reaches them
// (an ordered consumer of <prefix>.events.keys.rotated, used only as a
// nudge: the records come from the store, sealed under the master key, so
// a forged event can only cause a re-read) and, whatever happens on the
// bus, every keyringTick. Both are far inside the publish window, so every
// worker verifies a key before any worker signs with it.

// keyringTick is how often a worker re-reads the key records and checks
// the schedule. It must stay well inside domain.KeyPublishWindow.
var keyringTick = 30 * time.Second

// nudgeGap is the least time between re-reads caused by rotated events.
const nudgeGap = time.Second

// Rotate implements handlers.SessionKeys: the rotation of a keys command.
func (r *keyring) Rotate(ctx context.Context, changeID string, now time.Time) (key, previous domain.KeyInfo, err error) {
	rec, prev, _, err := r.rotate(ctx, changeID, handlers.TriggerCommand, now, 0)
	if err != nil {
		return key, previous, err
	}
	return r.info(rec), r.info(prev), nil
}

// Rotated implements handlers.SessionKeys.
func (r *keyring) Rotated(ctx context.Context, changeID string) (key, previous domain.KeyInfo, ok bool, err error) {
	if err := r.load(ctx); err != nil {
		return key, previous, false, err
	}
	rec, prev, ok := madeBy(r.records(), changeID)
	if !ok {
		return key, previous, false, nil
	}
	return r.info(rec), r.info(prev), true, nil
}

// info describes a record as the keys list and events do (no state).
func (r *keyring) info(rec domain.KeyRecord) domain.KeyInfo {
	for _, k := range domain.KeyInfos(r.records(), time.Time{}) {
		if k.Number == rec.Number {
			return k
		}
	}
	return domain.KeyInfo{KID: rec.KID, Number: rec.Number, PublishAt: rec.PublishAt, SignFrom: rec.SignFrom}
}

// madeBy finds the record the rotate command changeID made, and the one
// before it.
func madeBy(recs []domain.KeyRecord, changeID string) (rec, prev domain.KeyRecord, ok bool) {
	if changeID == "" {
		return rec, prev, false
	}
	for i, k := range recs {
		if k.ChangeID == changeID && i > 0 {
			return k, recs[i-1], true
		}
	}
	return rec, prev, false
}

// rotate records the key that follows the newest one, as of now, and
// returns it and the key before it; inserted says whether this call stored
// it. changeID names the command (a key it made already is returned as it
// is); with every > 0 (the schedule) nothing happens unless the schedule
// calls for a rotation on the records as read now. A rotation that another
// worker's insert beat, or that the newest key's publish window forbids,
// is domain.ErrKeyRotationInProgress.
func (r *keyring) rotate(ctx context.Context, changeID, trigger string, now time.Time, every time.Duration) (rec, prev domain.KeyRecord, inserted bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.loadLocked(ctx); err != nil {
		return rec, prev, false, err
	}
	recs := r.records()
	if rec, prev, ok := madeBy(recs, changeID); ok {
		return rec, prev, false, nil
	}
	latest := recs[len(recs)-1]
	if every > 0 && !domain.RotationDue(latest, every, now) {
		return rec, prev, false, errNotDue
	}
	next, err := domain.PlanRotation(latest, now, r.skew)
	if err != nil {
		return rec, prev, false, err
	}
	_, der, kid, err := newSigningKey()
	if err != nil {
		return rec, prev, false, err
	}
	next.KID, next.ChangeID = kid, changeID
	plain, err := json.Marshal(keyRecord{Number: next.Number, KID: kid, SigningKey: der, PublishAt: next.PublishAt,
		SignFrom: next.SignFrom, RetirePrevious: next.RetirePrevious, ChangeID: changeID, Trigger: trigger})
	if err != nil {
		return rec, prev, false, err
	}
	_, inserted, err = r.store.InsertSecret(ctx, keyName(next.Number), r.master, plain)
	if err != nil {
		return rec, prev, false, err
	}
	if err := r.loadLocked(ctx); err != nil {
		return rec, prev, false, err
	}
	recs = r.records()
	if !inserted {
		if rec, prev, ok := madeBy(recs, changeID); ok {
			return rec, prev, false, nil
		}
		return rec, prev, false, domain.ErrKeyRotationInProgress.With("another worker recorded key %d a moment ago", next.Number)
	}
	for i, k := range recs {
		if k.Number == next.Number && i > 0 {
			return k, recs[i-1], true, nil
		}
	}
	return rec, prev, false, errors.New("the key just stored is not in the records read back")
}

// errNotDue: the schedule does not call for a rotation.
var errNotDue = errors.New("no rotation due")

// runRotation re-reads the key records every keyringTick and whenever a
// rotated event arrives, and rotates when the schedule (every; 0: never)
// calls for it. The worker whose insert made a scheduled key publishes its
// tat.keys.rotated event.
func (w *Worker) runRotation(ctx context.Context, js jetstream.JetStream, pub handlers.Publisher, every time.Duration) {
	nudge := make(chan struct{}, 1)
	if stop, err := w.watchRotations(ctx, js, nudge); err != nil {
		w.log.Warn().Err(err).Msg("rotated events not followed; key records are re-read on a timer only")
	} else {
		defer stop()
	}
	t := time.NewTicker(keyringTick)
	defer t.Stop()
	var last time.Time // wall time of the last re-read
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
			// At most one re-read a second, however many events arrive
			// (anyone who may publish on the events subject can send one).
			if wait := nudgeGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := w.ring.load(lctx); err != nil {
			w.log.Warn().Err(err).Msg("session keys not re-read")
		} else if every > 0 {
			w.rotateOnSchedule(lctx, pub, every)
		}
		cancel()
	}
}

func (w *Worker) rotateOnSchedule(ctx context.Context, pub handlers.Publisher, every time.Duration) {
	now := w.now()
	rec, prev, inserted, err := w.ring.rotate(ctx, "", handlers.TriggerSchedule, now, every)
	switch {
	case errors.Is(err, errNotDue), errors.Is(err, domain.ErrKeyRotationInProgress):
		return
	case err != nil:
		w.log.Warn().Err(err).Msg("scheduled key rotation failed; retried on the next tick")
		return
	case !inserted:
		return
	}
	w.log.Info().Str("kid", rec.KID).Int("number", rec.Number).Time("sign_from", rec.SignFrom).
		Str("previous_kid", prev.KID).Msg("session-signing key rotated on schedule")
	key, previous := w.ring.info(rec), w.ring.info(prev)
	ev, err := domain.NewEvent(domain.EventID("keys.schedule", strconv.Itoa(rec.Number)), domain.EventKeysRotated, rec.KID, now,
		handlers.KeysEventData{Trigger: handlers.TriggerSchedule, Key: &key, PreviousKey: &previous})
	if err != nil {
		return
	}
	// Its id is fixed by the key's number: a retry is dropped as a
	// duplicate. Lost only if this worker dies here; the others read the
	// key on their next tick all the same.
	for attempt := 0; attempt < 5; attempt++ {
		if err = pub.PublishEvent(ctx, ev); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second << attempt):
		}
	}
	w.log.Warn().Err(err).Int("number", rec.Number).Msg("rotated event not published")
}

// watchRotations follows <prefix>.events.keys.rotated from now on and
// nudges on each event.
func (w *Worker) watchRotations(ctx context.Context, js jetstream.JetStream, nudge chan<- struct{}) (func(), error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	subject := w.cfg.subject("events", domain.Event{Type: domain.EventKeysRotated}.SubjectSuffix())
	oc, err := js.OrderedConsumer(cctx, w.cfg.streams().events, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	cc, err := oc.Consume(func(jetstream.Msg) {
		select {
		case nudge <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	return cc.Stop, nil
}
