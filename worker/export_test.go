package worker

import (
	"context"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Test hooks into a worker's session keys (compiled into the worker's tests
// only).

// SetKeyringTick makes the workers started afterwards in the test re-read
// their key records, and check the rotation schedule, every d.
func SetKeyringTick(t testing.TB, d time.Duration) {
	old := keyringTick
	keyringTick = d
	t.Cleanup(func() { keyringTick = old })
}

// SetStartTimeout sets the deadline of the start-up's server calls for the
// workers started afterwards in the test.
func SetStartTimeout(t testing.TB, d time.Duration) {
	old := startTimeout
	startTimeout = d
	t.Cleanup(func() { startTimeout = old })
}

// SigningKID is the kid this worker signs session JWTs with, at its clock's
// now ("" when none).
func (w *Worker) SigningKID() string {
	k, ok := w.issuer.Load().Signer(w.now())
	if !ok {
		return ""
	}
	return k.KID
}

// MintSessionJWT signs a session JWT for s as this worker would, now.
func (w *Worker) MintSessionJWT(s domain.Session) (string, error) {
	jwt, err := w.issuer.Load().MintJWT(s, w.now())
	return jwt.Reveal(), err
}

// AcceptSessionJWT checks raw as this worker would, now: nil when one of
// its published keys verifies it.
func (w *Worker) AcceptSessionJWT(raw string) error {
	_, err := w.issuer.Load().ParseJWT(raw, w.now())
	return err
}

// RotateOnce records the next session key as the schedule does (without
// waiting for it to be due): it returns the new key's number and whether
// this worker's insert stored it.
func (w *Worker) RotateOnce(ctx context.Context) (int, bool, error) {
	rec, _, inserted, err := w.ring.rotate(ctx, "", handlers.TriggerSchedule, w.now(), 0)
	return rec.Number, inserted, err
}

// SessionKeyInfos lists the keys this worker holds, with their state at its
// clock's now.
func (w *Worker) SessionKeyInfos() []domain.KeyInfo { return w.ring.KeyInfos(w.now()) }

// StallEventsConsumer stops the ordered consumer that keeps this worker's
// view current, as a consumer stuck after a cluster node died would be.
func (w *Worker) StallEventsConsumer() {
	w.feed.ccMu.Lock()
	cc := w.feed.cc
	w.feed.ccMu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}

// CatchUp is the worker's barrier, for tests.
func (w *Worker) CatchUp(ctx context.Context) error { return w.feed.CatchUp(ctx) }

// ViewSeq is the events stream position the view has applied.
func (w *Worker) ViewSeq() uint64 { return w.feed.view.Seq() }
