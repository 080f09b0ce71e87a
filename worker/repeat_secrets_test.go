package worker_test

import (
	"sync"
	"testing"
	"time"
)

// testClock is a worker clock a test moves forward.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRepeatAfterTokenExpiryGetsNoSecrets is the regression test of the
// week-long secret replay: a copy of an attest request (same request_id,
// same payload) is answered from the stored outcome, with the session token
// and a fresh session JWT only while the trusted token itself is valid
// (exp plus skew). After that the copy gets the outcome without secrets,
// and still no second event.
func TestRepeatAfterTokenExpiryGetsNoSecrets(t *testing.T) {
	clock := &testClock{t: time.Now().UTC()}
	f := newFixtureAt(t, clock.Now)
	exp := clock.Now().Add(2 * time.Minute).Unix()
	payload := map[string]any{"request_id": "copy-1", "profile_id": f.profile,
		"token": f.token(map[string]any{"exp": exp}), "session_duration_minutes": 60}
	subject := f.env.Subject("attest", "requests")

	first := f.env.Request(subject, "", payload)
	mustStatus(t, first, 200)
	if first["session_token"] == nil || first["session_jwt"] == nil {
		t.Fatalf("the first reply has no secrets: %v", first)
	}
	// While the token is valid a repeat is answered in full.
	again := f.env.Request(subject, "", payload)
	mustStatus(t, again, 200)
	if again["session_token"] != first["session_token"] || again["session_jwt"] == nil {
		t.Fatalf("a repeat within the token's validity: %v", again)
	}
	// Past exp plus the 60 s skew: the outcome, without secrets.
	clock.Advance(2*time.Minute + 61*time.Second)
	late := f.env.Request(subject, "", payload)
	mustStatus(t, late, 200)
	if late["session_token"] != nil || late["session_jwt"] != nil {
		t.Fatalf("a repeat after the token expired got secrets: %v", late)
	}
	firstSession := first["session"].(map[string]any)["session_id"]
	if s, _ := late["session"].(map[string]any); s == nil || s["session_id"] != firstSession {
		t.Fatalf("the late repeat does not carry the first outcome's session: %v", late)
	}
	if n := len(eventsFor(f.env.Events(), "copy-1")); n != 1 {
		t.Fatalf("%d events for one request", n)
	}
}
