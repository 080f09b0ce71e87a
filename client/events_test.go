package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/client"
)

// collect reads every event f passes until caught up.
func collect(t *testing.T, c *client.Client, f client.EventFilter) []*client.Event {
	t.Helper()
	f.UntilCaughtUp = true
	var out []*client.Event
	for ev, err := range c.Events(testCtx(t), f) {
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func types(evs []*client.Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, strings.TrimPrefix(ev.Type, "tat."))
	}
	return strings.Join(out, " ")
}

// TestEvents: typed events from a start sequence or time, filtered by type
// (server side), profile and user (client side); no secret in any of them.
func TestEvents(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	start := time.Now().Add(-time.Second)
	f := newFixture(t, c)
	created := f.attest(t, 30)
	if _, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: created.SessionToken, SessionDurationMinutes: 60}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(ctx, client.RevokeRequest{SessionToken: created.SessionToken}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Attest(ctx, client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"aud": "other"})})
	refusal(t, err, client.ErrJWTInvalidAudience)

	t.Run("by user, from the first event", func(t *testing.T) {
		evs := collect(t, c, client.EventFilter{StartSeq: 1, UserID: f.userID})
		if got, want := types(evs), "user.created session.created session.updated session.revoked"; got != want {
			t.Fatalf("types = %q, want %q", got, want)
		}
		u := evs[0].Data.(*client.UserResult)
		if u.User.UserID != f.userID || u.StatusCode != 200 || u.ChangeID == "" {
			t.Errorf("user.created data = %+v", u)
		}
		sc := evs[1].Data.(*client.SessionEventData)
		if sc.Session.SessionID != created.Session.SessionID || sc.ProfileID != f.profile || sc.SessionRevision != 1 || len(sc.TokenSHA256) != 64 {
			t.Errorf("session.created data = %+v", sc)
		}
		// A change by the sessions service: its request id is the worker's
		// own ("svc:<uuid>" in the contract), and it names no profile.
		if su := evs[2].Data.(*client.SessionEventData); !strings.HasPrefix(su.RequestID, "svc") || su.ProfileID != "" || su.SessionRevision != 2 {
			t.Errorf("session.updated data = %+v", su)
		}
		if sr := evs[3].Data.(*client.SessionRevokedData); sr.SessionID != created.Session.SessionID || sr.SessionRevision != 3 {
			t.Errorf("session.revoked data = %+v", sr)
		}
		for i, ev := range evs {
			if ev.SpecVersion != "1.0" || !strings.HasPrefix(ev.ID, "evt-") || ev.Source == "" || ev.Time.IsZero() || ev.Sequence == 0 {
				t.Errorf("envelope %d = %+v", i, ev)
			}
			if i > 0 && ev.Sequence <= evs[i-1].Sequence {
				t.Errorf("sequences out of order: %d after %d", ev.Sequence, evs[i-1].Sequence)
			}
			for _, secret := range []client.Secret{created.SessionToken, created.SessionJWT} {
				if strings.Contains(string(ev.RawData), secret.Reveal()) {
					t.Errorf("event %s carries a secret", ev.Type)
				}
			}
		}
	})
	t.Run("by profile and type, from a time", func(t *testing.T) {
		evs := collect(t, c, client.EventFilter{StartTime: start, ProfileID: f.profile,
			Types: []string{client.EventProfileCreated, client.EventAttestFailed}})
		if got, want := types(evs), "profile.created attest.failed"; got != want {
			t.Fatalf("types = %q, want %q", got, want)
		}
		failed := evs[1].Data.(*client.AttestFailedData)
		if !errors.Is(failed.Err(), client.ErrJWTInvalidAudience) || failed.ProfileID != f.profile {
			t.Errorf("attest.failed data = %+v", failed)
		}
		if evs[0].ProfileID() != f.profile || evs[0].Data.(*client.ProfileResult).Profile.Version != 1 {
			t.Errorf("profile.created data = %+v", evs[0].Data)
		}
	})
	t.Run("by type pattern", func(t *testing.T) {
		evs := collect(t, c, client.EventFilter{StartSeq: 1, UserID: f.userID, Types: []string{"tat.session.>"}})
		if got, want := types(evs), "session.created session.updated session.revoked"; got != want {
			t.Fatalf("types = %q, want %q", got, want)
		}
		evs = collect(t, c, client.EventFilter{StartTime: start, ProfileID: f.profile, Types: []string{"tat.*.failed", "tat.profile.*"}})
		if got, want := types(evs), "profile.created attest.failed"; got != want {
			t.Fatalf("types = %q, want %q", got, want)
		}
	})
	t.Run("resume after a sequence", func(t *testing.T) {
		all := collect(t, c, client.EventFilter{StartSeq: 1, UserID: f.userID})
		rest := collect(t, c, client.EventFilter{StartSeq: all[1].Sequence + 1, UserID: f.userID})
		if got, want := types(rest), "session.updated session.revoked"; got != want {
			t.Fatalf("types = %q, want %q", got, want)
		}
	})
	t.Run("nothing matches", func(t *testing.T) {
		if evs := collect(t, c, client.EventFilter{StartTime: time.Now().Add(time.Hour)}); len(evs) != 0 {
			t.Fatalf("events from the future: %d", len(evs))
		}
		if evs := collect(t, c, client.EventFilter{}); len(evs) != 0 {
			t.Fatalf("new events, caught up at once: %d", len(evs))
		}
	})
	t.Run("bad filters", func(t *testing.T) {
		for name, ef := range map[string]client.EventFilter{
			"sequence and time": {StartSeq: 1, StartTime: start},
			"unknown type form": {Types: []string{"session.created"}},
			"wildcard mid-type": {Types: []string{"tat.>.created"}},
			"empty token":       {Types: []string{"tat.session..created"}},
		} {
			n := 0
			for ev, err := range c.Events(ctx, ef) {
				n++
				if ev != nil || err == nil {
					t.Errorf("%s: got %v, %v; want one error", name, ev, err)
				}
			}
			if n != 1 {
				t.Errorf("%s: %d yields, want 1", name, n)
			}
		}
	})
}

// TestEventsFollow: without UntilCaughtUp the iteration follows new events
// and ends when its context does.
func TestEventsFollow(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *client.Event, 10)
	done := make(chan error, 1)
	// From now, not "new only": the consumer may start after the attest.
	since := time.Now()
	go func() {
		defer close(done)
		for ev, err := range c.Events(ctx, client.EventFilter{StartTime: since, UserID: f.userID, Types: []string{client.EventSessionCreated}}) {
			if err != nil {
				done <- err
				return
			}
			got <- ev
		}
	}()
	// The second attest happens once the consumer has delivered the
	// first: its event is followed, not replayed.
	for i := range 2 {
		res := f.attest(t, 5)
		select {
		case ev := <-got:
			if ev.Data.(*client.SessionEventData).Session.SessionID != res.Session.SessionID {
				t.Errorf("followed event %d = %+v", i, ev.Data)
			}
		case err := <-done:
			t.Fatalf("the iteration ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not followed", i)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ended with %v, want a silent end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the iteration did not end with its context")
	}
}

// TestEventsThroughAnAPIPrefix: WithJetStreamAPIPrefix makes the events
// consumer through that prefix (an account importing the worker's
// JetStream API); a prefix nobody serves gets no consumer.
func TestEventsThroughAnAPIPrefix(t *testing.T) {
	c := newClient(t, client.WithJetStreamAPIPrefix("$JS.API."))
	n := 0
	for _, err := range c.Events(testCtx(t), client.EventFilter{StartSeq: 1, UntilCaughtUp: true}) {
		if err != nil {
			t.Fatalf("through $JS.API: %v", err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("through $JS.API: no event read")
	}
	c = newClient(t, client.WithJetStreamAPIPrefix("$JS.NOBODY.API"), client.WithTimeout(time.Second))
	for ev, err := range c.Events(context.Background(), client.EventFilter{StartSeq: 1, UntilCaughtUp: true}) {
		if ev != nil || err == nil {
			t.Fatalf("through a prefix nobody serves: %v, %v", ev, err)
		}
	}
}
