package handlers_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// TestAuthenticateRefusesSessionOfInactiveUser: a session that is itself
// active still authenticates only while its user is active. Once the user
// is disabled, pending or deleted, authenticate (by session token or JWT,
// with or without a new duration) answers session_not_found, mints no JWT
// and changes nothing.
func TestAuthenticateRefusesSessionOfInactiveUser(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		user     func(e *env, u domain.User) // what happens to the user after the session started
		byJWT    bool
		minutes  int // 0: none sent
		accepted bool
	}{
		{name: "active user by session_token", accepted: true},
		{name: "active user by session_jwt", byJWT: true, accepted: true},
		{name: "active user extends by session_token", minutes: 120, accepted: true},
		{name: "disabled user by session_token", user: setStatus(domain.UserDisabled)},
		{name: "disabled user by session_jwt", user: setStatus(domain.UserDisabled), byJWT: true},
		{name: "disabled user asking for a longer session", user: setStatus(domain.UserDisabled), minutes: 120},
		{name: "pending user by session_token", user: setStatus(domain.UserPending)},
		{name: "deleted user by session_token", user: deleteUser},
		{name: "deleted user by session_jwt", user: deleteUser, byJWT: true},
		{name: "deleted user asking for a longer session", user: deleteUser, minutes: 120},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			ada := e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			start := e.startSession(t, "start-ada", "ada@example.com")
			sid := start.Session.SessionID
			if tc.user != nil {
				tc.user(e, ada)
			}
			e.clock.Set(t0.Add(time.Minute))
			before, _ := e.view.Session(sid)
			eventsBefore := len(e.pub.Events())

			req := map[string]any{}
			if tc.byJWT {
				req["session_jwt"] = start.SessionJWT
			} else {
				req["session_token"] = start.SessionToken
			}
			if tc.minutes > 0 {
				req["session_duration_minutes"] = tc.minutes
			}
			data, _ := json.Marshal(req)
			r := e.svc.Authenticate(context.Background(), data)

			if tc.accepted {
				if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != sid || r.User == nil || r.User.UserID != ada.UserID || r.SessionJWT == "" {
					t.Fatalf("authenticate: %+v", r)
				}
				if c, err := e.issuer.ParseJWT(r.SessionJWT, e.clock.Now()); err != nil || c.SessionID != sid {
					t.Fatalf("minted JWT names %+v (%v)", c, err)
				}
				if tc.minutes > 0 && !r.Session.ExpiresAt.Equal(e.clock.Now().Add(time.Duration(tc.minutes)*time.Minute)) {
					t.Errorf("expires_at = %v, want now + %d minutes", r.Session.ExpiresAt, tc.minutes)
				}
				return
			}
			if r.StatusCode != 404 || r.ErrorType != domain.ErrSessionNotFound.Code {
				t.Fatalf("authenticate for an inactive user: %d %s (%s), want 404 session_not_found", r.StatusCode, r.ErrorType, r.ErrorMessage)
			}
			if r.Session != nil || r.User != nil || r.SessionJWT != "" || r.SessionToken != "" {
				t.Errorf("a refusal carries the session, user or a secret: %+v", r)
			}
			after, _ := e.view.Session(sid)
			if !reflect.DeepEqual(after, before) {
				t.Errorf("the session changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if n := e.sessions.Revisions(sid); n != 1 {
				t.Errorf("%d revisions stored, want 1", n)
			}
			if n := len(e.pub.Events()); n != eventsBefore {
				t.Errorf("%d events published by a refused authenticate", n-eventsBefore)
			}
		})
	}
}

// setStatus applies a user update that gives the user status.
func setStatus(status string) func(e *env, u domain.User) {
	return func(e *env, u domain.User) {
		u.Status = status
		u.Version++
		e.view.PutUser(u, false)
	}
}

// deleteUser applies a user deletion.
func deleteUser(e *env, u domain.User) {
	u.Version++
	e.view.PutUser(u, true)
}

// TestAuthenticateStillNeedsActiveSession guards the session half of the
// same check: a revoked or expired session of an active user is refused.
func TestAuthenticateStillNeedsActiveSession(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		end  func(e *env, st domain.SessionState)
	}{
		{name: "revoked", end: func(e *env, st domain.SessionState) {
			st.Revision++
			st.Revoked = true
			e.view.PutSession(st)
		}},
		{name: "expired", end: func(e *env, _ domain.SessionState) { e.clock.Set(t0.Add(61 * time.Minute)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			start := e.startSession(t, "start-ada", "ada@example.com")
			st, _ := e.view.Session(start.Session.SessionID)
			tc.end(e, st)
			data, _ := json.Marshal(map[string]any{"session_token": start.SessionToken})
			r := e.svc.Authenticate(context.Background(), data)
			if r.StatusCode != 404 || r.ErrorType != domain.ErrSessionNotFound.Code || r.SessionJWT != "" {
				t.Fatalf("authenticate a %s session: %+v", tc.name, r)
			}
		})
	}
}
