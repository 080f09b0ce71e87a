package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestRevokeRetriesItsEventWithBackoff: when the events stream refuses a
// revocation's session.revoked, the sessions service tries three times,
// waiting 200 ms and then 400 ms between tries, and then fails the request.
// (Found missing by mutation testing, make mutate.)
func TestRevokeRetriesItsEventWithBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	s := e.startSession(t, "start", "ada@example.com")
	e.pub.refuseType(domain.EventSessionRevoked)
	calls := e.pub.calls.Load()
	start := time.Now()
	r := revoke(t, e.svc, map[string]any{"session_token": s.SessionToken})
	elapsed := time.Since(start)
	if r.StatusCode == 200 {
		t.Fatalf("revoke succeeded with the stream refusing its event: %+v", r)
	}
	if n := e.pub.calls.Load() - calls; n != 3 {
		t.Errorf("%d publish attempts, want 3", n)
	}
	if elapsed < 600*time.Millisecond {
		t.Errorf("three attempts took %v, want at least the 200 ms + 400 ms of backoff", elapsed)
	}
}

// TestRevokeByIDSeesASessionOfAnotherWorker: a session another worker
// started a moment ago (stored, its event not yet applied here) is found by
// its id after one catch-up, and revoked.
func TestRevokeByIDSeesASessionOfAnotherWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	s := domain.NewSession("session-elsewhere", "user-ada", domain.FactorEvidence{ProfileID: e.profile.ProfileID, TokenID: "j-1"}, nil, t0, 60)
	st := domain.SessionState{Session: s, Revision: 1}
	if _, _, err := e.sessions.InsertRevision(context.Background(), st, "other-worker-attest"); err != nil {
		t.Fatal(err)
	}
	b := &lateBarrier{arrive: func() { e.view.PutSession(st) }}
	svc := &handlers.Sessions{View: e.view, Barrier: b, Sessions: e.sessions, Pub: e.pub, Issuer: e.issuer, Now: e.clock.Now}
	r := revoke(t, svc, map[string]any{"session_id": "session-elsewhere"})
	if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != "session-elsewhere" {
		t.Fatalf("revoke: %+v", r)
	}
	if b.calls.Load() != 1 {
		t.Errorf("%d catch-ups, want 1", b.calls.Load())
	}
	if got, _ := e.view.Session("session-elsewhere"); !got.Revoked {
		t.Errorf("the view holds %+v", got)
	}
}
