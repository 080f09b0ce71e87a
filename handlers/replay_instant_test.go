package handlers_test

import (
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestAttestReplayClaimJudgedAtTokenInstant is the regression test of the
// second spend of one token: a request carrying a token another request
// already used, published while both were valid and retried after the
// first claim expired by the clock, must be token_replayed. The claim is
// judged at the same instant as the token's times; before, it was judged
// now, found expired, taken over, and a second session was started.
func TestAttestReplayClaimJudgedAtTokenInstant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	tok, jti := e.token(t, "ada@example.com", t0) // valid to t0+10m (+ skew)

	e.clock.Set(t0.Add(time.Minute))
	first := e.attestReply(t, handlers.Input{}, map[string]any{"request_id": "first", "token": tok, "session_duration_minutes": 30})
	if first.StatusCode != 200 || first.Session == nil {
		t.Fatalf("first use: %+v", first)
	}

	// The copy was published at t0+2m, its first delivery failed, and it is
	// redelivered at t0+20m: the token and the first claim both expired by
	// the clock, both were live when it was published.
	e.clock.Set(t0.Add(20 * time.Minute))
	second := e.attestReply(t, handlers.Input{Redelivered: true, PublishedAt: t0.Add(2 * time.Minute)},
		map[string]any{"request_id": "second", "token": tok, "session_duration_minutes": 30})
	e.wantRefused(t, "second", second, domain.ErrTokenReplayed)
	if holder, ok := e.replays.Holder(e.profile.ProfileID, jti); !ok || holder != "first" {
		t.Errorf("claim held by %q (%v), want first", holder, ok)
	}
	if n := e.sessions.Count(); n != 1 {
		t.Errorf("%d sessions stored for one token id, want 1", n)
	}
}
