package handlers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestViewHoldsReadsStrictly: the view skips an event whose session or
// user it already holds at that revision or a newer one, reading two
// members of its data. A member named as one of them in another case, or
// sent twice, does not make the view take the event as held: the event
// goes to the full decode, which refuses it, instead of being dropped
// without a word (encoding/json would match "Session" to session and let
// the last of two session_revision members win).
func TestViewHoldsReadsStrictly(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := handlers.NewView(func(id string) string { return "token-of-" + id })
	s := domain.Session{SessionID: "s-1", UserID: "u-1", StartedAt: now, LastAccessedAt: now, ExpiresAt: now.Add(time.Hour)}
	v.PutSession(domain.SessionState{Session: s, Revision: 5})
	u := domain.User{UserSpec: domain.UserSpec{UserID: "u-1", Status: "active"}, Version: 3, CreatedAt: now, UpdatedAt: now}
	v.PutUser(u, false)

	sessionData := func(rev int64, at time.Time) string {
		s := s
		s.LastAccessedAt = at
		raw, err := json.Marshal(handlers.AttestEventData{RequestID: "r-1", Session: &s, SessionRevision: rev})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	userData := func(version int64) string {
		u := u
		u.Version = version
		raw, err := json.Marshal(handlers.UserEventData{User: &u})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	apply := func(typ, data string) error {
		e, err := domain.NewEvent("evt-1", typ, "", now, json.RawMessage(data))
		if err != nil {
			t.Fatal(err)
		}
		return v.ApplyEvent(1, e)
	}

	// As written by a worker: held at its revision, applied when newer.
	if err := apply(domain.EventSessionUpdated, sessionData(5, now)); err != nil {
		t.Fatalf("a held session's event: %v", err)
	}
	if err := apply(domain.EventUserUpdated, userData(3)); err != nil {
		t.Fatalf("a held user's event: %v", err)
	}
	later := now.Add(time.Minute)
	if err := apply(domain.EventSessionUpdated, sessionData(6, later)); err != nil {
		t.Fatalf("a newer session: %v", err)
	}
	if got, _ := v.Session("s-1"); got.Revision != 6 || !got.Session.LastAccessedAt.Equal(later) {
		t.Fatalf("the newer session was not applied: %+v", got)
	}

	for _, tc := range []struct{ name, typ, data string }{
		{"Session in another case", domain.EventSessionUpdated, `{"request_id":"r-1","Session":{"session_id":"s-1"},"session_revision":6}`},
		{"session_id in another case", domain.EventSessionUpdated, `{"request_id":"r-1","session":{"Session_ID":"s-1"},"session_revision":6}`},
		{"Session with a long s", domain.EventSessionRevoked, `{"session_id":"s-1","user_id":"u-1","ſession":{"session_id":"s-1"},"session_revision":6}`},
		{"session_revision in another case, after a newer one", domain.EventSessionUpdated,
			strings.Replace(sessionData(7, later.Add(time.Minute)), `"session_revision":7`, `"session_revision":7,"Session_Revision":1`, 1)},
		{"session_revision twice, the last older", domain.EventSessionUpdated,
			strings.Replace(sessionData(7, later.Add(time.Minute)), `"session_revision":7`, `"session_revision":7,"session_revision":1`, 1)},
		{"User in another case", domain.EventUserUpdated, `{"User":{"user_id":"u-1","version":3}}`},
		{"version in another case, after a newer one", domain.EventUserUpdated,
			strings.Replace(userData(4), `"version":4`, `"version":4,"VERSION":1`, 1)},
		{"user_id twice", domain.EventUserUpdated, strings.Replace(userData(3), `"user_id":"u-1"`, `"user_id":"u-1","user_id":"u-1"`, 1)},
	} {
		if err := apply(tc.typ, tc.data); err == nil || !strings.Contains(err.Error(), "bad") {
			t.Errorf("%s: ApplyEvent = %v, want it refused as bad data (not taken as held)", tc.name, err)
		}
	}
	if got, _ := v.Session("s-1"); got.Revision != 6 || got.Revoked {
		t.Errorf("the session changed: %+v", got)
	}
	if version, _, live := v.UserVersion("u-1"); version != 3 || !live {
		t.Errorf("the user changed: version %d live %v", version, live)
	}
}
