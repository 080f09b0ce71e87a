package handlers_test

import (
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
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
