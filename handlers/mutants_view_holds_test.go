package handlers_test

import (
	"testing"

	"github.com/tat-worker/attest/domain"
)

// TestViewRefusesEventsNamingNoRecord: a user or session event whose data
// is well formed but names no user or session is refused with an error
// (the skip test that reads two fields must not take it as held, nor
// panic on it), and the view's state does not change.
func TestViewRefusesEventsNamingNoRecord(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ  string
		data map[string]any
	}{
		{domain.EventUserCreated, map[string]any{"change_id": "c-1"}},
		{domain.EventUserUpdated, map[string]any{"change_id": "c-1", "status_code": 200}},
		{domain.EventUserDeleted, map[string]any{"user_id": "user-x"}},
		{domain.EventSessionCreated, map[string]any{"request_id": "r-1", "session_revision": 1}},
		{domain.EventSessionUpdated, map[string]any{"request_id": "r-1"}},
		{domain.EventSessionRevoked, map[string]any{"session_id": "session-x", "session_revision": 2}},
	}
	for i, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			e := newEnv(t, false)
			ev, err := domain.NewEvent("evt-none", tc.typ, "x", t0, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.view.ApplyEvent(uint64(i+1), ev); err == nil {
				t.Errorf("%s naming no record was applied without an error", tc.typ)
			}
			if _, ok := e.view.User("user-x"); ok {
				t.Error("the view holds a user the event did not name")
			}
			if _, ok := e.view.Session("session-x"); ok {
				t.Error("the view holds a session the event did not name")
			}
		})
	}
}
