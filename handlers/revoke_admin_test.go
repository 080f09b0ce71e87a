package handlers_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// revokeBearer sends one tat.sessions.revoke request (the applications'
// endpoint: a bearer proof only).
func revokeBearer(t *testing.T, svc *handlers.Sessions, payload any) handlers.SessionReply {
	t.Helper()
	data, _ := json.Marshal(payload)
	return svc.Revoke(context.Background(), data)
}

// TestRevokeEndpointsTable: tat.sessions.revoke ends a session only on a
// bearer proof (session_token or session_jwt) and refuses ids, which are
// not secrets, with invalid_request naming the admin endpoint, without
// touching a session; tat.sessions.admin.revoke takes any one of the four.
func TestRevokeEndpointsTable(t *testing.T) {
	t.Parallel()
	type endpoint func(*testing.T, *handlers.Sessions, any) handlers.SessionReply
	bearer, admin := endpoint(revokeBearer), endpoint(revoke)
	for _, tc := range []struct {
		name string
		call endpoint
		// payload builds the request on the fixture.
		payload func(f *sessionsFixture) map[string]any
		status  int
		errType string
		// ended are the fixture's sessions (by request id) the call ends.
		ended []string
		// pointsToAdmin: the error message names the admin endpoint.
		pointsToAdmin bool
	}{
		{name: "bearer: session_token", call: bearer, status: 200, ended: []string{"a-1"},
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_token": f.sessions["a-1"].SessionToken}
			}},
		{name: "bearer: session_jwt", call: bearer, status: 200, ended: []string{"a-2"},
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_jwt": f.sessions["a-2"].SessionJWT}
			}},
		{name: "bearer: another user's session_id", call: bearer, status: 400, errType: "invalid_request", pointsToAdmin: true,
			payload: func(f *sessionsFixture) map[string]any { return map[string]any{"session_id": f.id("g-1")} }},
		{name: "bearer: another user's user_id", call: bearer, status: 400, errType: "invalid_request", pointsToAdmin: true,
			payload: func(*sessionsFixture) map[string]any { return map[string]any{"user_id": "user-grace"} }},
		{name: "bearer: a user_id that never existed", call: bearer, status: 400, errType: "invalid_request", pointsToAdmin: true,
			payload: func(*sessionsFixture) map[string]any { return map[string]any{"user_id": "user-nobody"} }},
		{name: "bearer: session_id beside its own session_token", call: bearer, status: 400, errType: "invalid_request", pointsToAdmin: true,
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_id": f.id("g-1"), "session_token": f.sessions["a-1"].SessionToken}
			}},
		{name: "bearer: user_id beside a session_jwt", call: bearer, status: 400, errType: "invalid_request", pointsToAdmin: true,
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"user_id": "user-grace", "session_jwt": f.sessions["a-1"].SessionJWT}
			}},
		{name: "bearer: both bearer forms", call: bearer, status: 400, errType: "invalid_request",
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_token": f.sessions["a-1"].SessionToken, "session_jwt": f.sessions["a-1"].SessionJWT}
			}},
		{name: "bearer: nothing", call: bearer, status: 400, errType: "invalid_request",
			payload: func(*sessionsFixture) map[string]any { return map[string]any{} }},
		{name: "bearer: an unknown token", call: bearer, status: 404, errType: "session_not_found",
			payload: func(*sessionsFixture) map[string]any { return map[string]any{"session_token": "tat_st_nope"} }},
		{name: "bearer: a member the request has not", call: bearer, status: 400, errType: "invalid_request",
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_token": f.sessions["a-1"].SessionToken, "email": "grace@example.com"}
			}},
		{name: "admin: session_id", call: admin, status: 200, ended: []string{"g-1"},
			payload: func(f *sessionsFixture) map[string]any { return map[string]any{"session_id": f.id("g-1")} }},
		{name: "admin: user_id", call: admin, status: 200, ended: []string{"a-1", "a-2", "a-3"},
			payload: func(*sessionsFixture) map[string]any { return map[string]any{"user_id": "user-ada"} }},
		{name: "admin: session_token", call: admin, status: 200, ended: []string{"a-3"},
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_token": f.sessions["a-3"].SessionToken}
			}},
		{name: "admin: session_jwt", call: admin, status: 200, ended: []string{"g-1"},
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_jwt": f.sessions["g-1"].SessionJWT}
			}},
		{name: "admin: session_id and user_id", call: admin, status: 400, errType: "invalid_request",
			payload: func(f *sessionsFixture) map[string]any {
				return map[string]any{"session_id": f.id("g-1"), "user_id": "user-ada"}
			}},
		{name: "admin: nothing", call: admin, status: 400, errType: "invalid_request",
			payload: func(*sessionsFixture) map[string]any { return map[string]any{} }},
		{name: "admin: an unknown session_id", call: admin, status: 404, errType: "session_not_found",
			payload: func(*sessionsFixture) map[string]any {
				return map[string]any{"session_id": "session-00000000-0000-4000-8000-000000000000"}
			}},
		{name: "admin: a user_id that never existed", call: admin, status: 404, errType: "user_not_found",
			payload: func(*sessionsFixture) map[string]any { return map[string]any{"user_id": "user-nobody"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSessionsFixture(t)
			r := tc.call(t, f.e.svc, tc.payload(f))
			if r.StatusCode != tc.status || r.ErrorType != tc.errType {
				t.Fatalf("%+v, want %d %q", r, tc.status, tc.errType)
			}
			if tc.pointsToAdmin && !strings.Contains(r.ErrorMessage, "sessions.admin.revoke") {
				t.Errorf("the refusal does not name the admin endpoint: %q", r.ErrorMessage)
			}
			var ended, kept []string
			for _, id := range []string{"a-1", "a-2", "a-3", "g-1"} {
				if slices.Contains(tc.ended, id) {
					ended = append(ended, f.id(id))
				} else {
					kept = append(kept, f.id(id))
				}
			}
			switch {
			case tc.status != 200:
				if r.Session != nil || r.RevokedSessionIDs != nil {
					t.Errorf("a refusal carries a session or ids: %+v", r)
				}
			case r.RevokedSessionIDs != nil: // by user_id: the ids it ended
				got := slices.Clone(*r.RevokedSessionIDs)
				slices.Sort(got)
				if want := slices.Sorted(slices.Values(ended)); !slices.Equal(got, want) {
					t.Errorf("revoked_session_ids %v, want %v", got, want)
				}
			case r.Session == nil || len(ended) != 1 || r.Session.SessionID != ended[0]:
				t.Errorf("one session's revoke answers %+v, want the session %v", r, ended)
			}
			wantEnded(t, f.e, ended, kept)
			for _, id := range tc.ended {
				if authenticates(f.e, f.sessions[id].SessionToken) {
					t.Errorf("session %s still authenticates", id)
				}
			}
		})
	}
}

// TestRevokeBearerRepeatAndAdminAfter: a repeated bearer revoke answers
// 200 and publishes nothing more, and an operator's revoke of the same
// session by id afterwards is a repeat too (one event in all).
func TestRevokeBearerRepeatAndAdminAfter(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	tok := f.sessions["a-1"].SessionToken
	for i := range 2 {
		if r := revokeBearer(t, f.e.svc, map[string]any{"session_token": tok}); r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != f.id("a-1") {
			t.Fatalf("bearer revoke %d: %+v", i, r)
		}
	}
	if r := revoke(t, f.e.svc, map[string]any{"session_id": f.id("a-1")}); r.StatusCode != 200 {
		t.Fatalf("admin revoke after: %+v", r)
	}
	wantEnded(t, f.e, []string{f.id("a-1")}, []string{f.id("a-2"), f.id("a-3"), f.id("g-1")})
	if n := len(f.e.pub.OfType(domain.EventSessionRevoked)); n != 1 {
		t.Fatalf("%d session.revoked events, want 1", n)
	}
}
