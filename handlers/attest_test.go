package handlers_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestAttestRefusesAnotherUsersSession: a token attaches its factor only to
// a session of the token's own user. User B's valid token naming user A's
// session (by session token or session JWT) is refused with
// user_id_mismatch before anything is written: A's session keeps its
// revision and content, no revision is stored, and B's token is not
// consumed.
func TestAttestRefusesAnotherUsersSession(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		email   string // whose token attaches to ada's session
		byJWT   bool
		refused bool
	}{
		{name: "another user's token by session_token", email: "bob@example.com", refused: true},
		{name: "another user's token by session_jwt", email: "bob@example.com", byJWT: true, refused: true},
		{name: "the owner's token by session_token", email: "Ada@Example.com"},
		{name: "the owner's token by session_jwt", email: "ada@example.com", byJWT: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			ada := e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			e.addUser(t, "user-bob", "bob@example.com", domain.UserActive)
			start := e.startSession(t, "start-ada", "ada@example.com")
			sid := start.Session.SessionID
			before, ok := e.view.Session(sid)
			if !ok || before.Session.UserID != ada.UserID || before.Revision != 1 {
				t.Fatalf("ada's session in the view: %+v (%v)", before, ok)
			}

			e.clock.Set(t0.Add(time.Minute))
			tok, jti := e.token(t, tc.email, e.clock.Now())
			payload := map[string]any{"request_id": "attach", "token": tok, "session_duration_minutes": 90}
			if tc.byJWT {
				payload["session_jwt"] = start.SessionJWT
			} else {
				payload["session_token"] = start.SessionToken
			}
			r := e.attestReply(t, handlers.Input{}, payload)

			after, _ := e.view.Session(sid)
			if !tc.refused {
				if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != sid || r.UserID != ada.UserID {
					t.Fatalf("the owner's attach: %+v", r)
				}
				if after.Revision != 2 || len(after.Session.AuthenticationFactors) != 1 ||
					after.Session.AuthenticationFactors[0].TrustedAuthTokenFactor.TokenID != jti {
					t.Fatalf("session after the owner's attach: %+v", after)
				}
				return
			}
			e.wantRefused(t, "attach", r, domain.ErrUserIDMismatch)
			if !reflect.DeepEqual(after, before) {
				t.Errorf("ada's session changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if n := e.sessions.Revisions(sid); n != 1 {
				t.Errorf("%d revisions of ada's session stored, want 1", n)
			}
			if holder, ok := e.replays.Holder(e.profile.ProfileID, jti); ok {
				t.Errorf("bob's refused token was consumed (claim held by %s)", holder)
			}
			if n := len(e.pub.OfType(domain.EventSessionUpdated)); n != 0 {
				t.Errorf("%d session.updated events", n)
			}
		})
	}
}

// TestAttestJITGate: a valid token whose email no user has makes a user
// only on a profile that allows just-in-time provisioning; anywhere else it
// is refused with user_not_found and nothing is written or announced.
func TestAttestJITGate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		jit     bool
		minutes int // 0: verify only
		want    *domain.Error
	}{
		{name: "unknown email on a profile without JIT", want: domain.ErrUserNotFound},
		{name: "unknown email with a session on a profile without JIT", minutes: 30, want: domain.ErrUserNotFound},
		{name: "unknown email on a JIT profile", jit: true},
		{name: "unknown email with a session on a JIT profile", jit: true, minutes: 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.jit)
			e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			tok, jti := e.token(t, "New.Comer@Example.com", t0)
			payload := map[string]any{"request_id": "jit", "token": tok}
			if tc.minutes > 0 {
				payload["session_duration_minutes"] = tc.minutes
			}
			r := e.attestReply(t, handlers.Input{}, payload)
			jitID := domain.JITUserID("new.comer@example.com")
			users, emails := e.users.Stored()

			if tc.want == nil {
				if r.StatusCode != 200 || r.UserID != jitID || r.User == nil || !r.User.Active() {
					t.Fatalf("JIT attest: %+v", r)
				}
				if n := len(e.pub.OfType(domain.EventUserCreated)); n != 1 {
					t.Fatalf("%d user.created events, want 1", n)
				}
				if u, ok := e.view.UserByEmail("new.comer@example.com"); !ok || u.UserID != jitID {
					t.Fatalf("JIT user not in the view: %+v", u)
				}
				if users != 2 || emails != 2 {
					t.Fatalf("store holds %d users and %d email claims, want 2 and 2", users, emails)
				}
				return
			}
			e.wantRefused(t, "jit", r, tc.want)
			if n := len(e.pub.OfType(domain.EventUserCreated)); n != 0 {
				t.Errorf("%d user.created events for a refused token", n)
			}
			if u, ok := e.view.UserByEmail("new.comer@example.com"); ok {
				t.Errorf("a user was made for the unknown email: %+v", u)
			}
			if _, ok := e.view.User(jitID); ok {
				t.Errorf("the JIT user %s is in the view", jitID)
			}
			if users != 1 || emails != 1 {
				t.Errorf("store holds %d users and %d email claims, want only ada's", users, emails)
			}
			if e.sessions.Count() != 0 {
				t.Errorf("%d session revisions stored", e.sessions.Count())
			}
			if _, ok := e.replays.Holder(e.profile.ProfileID, jti); ok {
				t.Errorf("the refused token was consumed")
			}
		})
	}
}

// TestAttestJITDoesNotReviveInactiveUser: on a JIT profile, a token for a
// known but inactive user is refused; provisioning is only for unknown
// addresses.
func TestAttestJITDoesNotReviveInactiveUser(t *testing.T) {
	t.Parallel()
	for _, status := range []string{domain.UserDisabled, domain.UserPending} {
		t.Run(status, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			e.addUser(t, "user-ada", "ada@example.com", status)
			tok, _ := e.token(t, "ada@example.com", t0)
			r := e.attestReply(t, handlers.Input{}, map[string]any{"request_id": "inactive", "token": tok, "session_duration_minutes": 30})
			e.wantRefused(t, "inactive", r, domain.ErrUserNotFound)
			if n := len(e.pub.OfType(domain.EventUserCreated)); n != 0 || e.sessions.Count() != 0 {
				t.Errorf("%d user.created events, %d session revisions", n, e.sessions.Count())
			}
		})
	}
}

// TestAttestTokenTimesOnRedelivery: a redelivered request is judged as of
// the moment the stream stored it (never later than now), so a retry after
// an outage decides as the first attempt did; a first delivery is judged
// as of now whatever its publish time.
func TestAttestTokenTimesOnRedelivery(t *testing.T) {
	t.Parallel()
	// The token is valid from t0 for ten minutes (and the skew of 60s).
	cases := []struct {
		name        string
		redelivered bool
		published   time.Time // zero: unknown
		now         time.Time
		want        *domain.Error // nil: accepted
	}{
		{name: "first delivery after the token expired is judged now",
			published: t0.Add(time.Minute), now: t0.Add(time.Hour), want: domain.ErrExpired},
		{name: "redelivery after the token expired is judged as of its publish time",
			redelivered: true, published: t0.Add(time.Minute), now: t0.Add(20 * time.Minute)},
		{name: "redelivery published longer ago than the lookback is judged at now minus the lookback",
			redelivered: true, published: t0.Add(time.Minute), now: t0.Add(11*time.Minute + domain.RedeliveryLookback + time.Second), want: domain.ErrExpired},
		{name: "redelivery just within the lookback is judged as of its publish time",
			redelivered: true, published: t0.Add(time.Minute), now: t0.Add(time.Minute + domain.RedeliveryLookback)},
		{name: "redelivery without a publish time is judged now",
			redelivered: true, now: t0.Add(20 * time.Minute), want: domain.ErrExpired},
		{name: "redelivery without a publish time of a valid token is accepted",
			redelivered: true, now: t0.Add(time.Minute)},
		{name: "redelivery published before the token was valid is refused",
			redelivered: true, published: t0.Add(-10 * time.Minute), now: t0.Add(time.Minute), want: domain.ErrNotYetValid},
		{name: "redelivery stamped after now is judged now, never later",
			redelivered: true, published: t0.Add(time.Hour), now: t0.Add(time.Minute)},
		{name: "first delivery of a valid token stamped before it was valid is judged now",
			published: t0.Add(-10 * time.Minute), now: t0.Add(time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			tok, jti := e.token(t, "ada@example.com", t0)
			e.clock.Set(tc.now)
			in := handlers.Input{Redelivered: tc.redelivered, PublishedAt: tc.published}
			r := e.attestReply(t, in, map[string]any{"request_id": "timed", "token": tok, "session_duration_minutes": 30})
			if tc.want != nil {
				e.wantRefused(t, "timed", r, tc.want)
				return
			}
			if r.StatusCode != 200 || r.Session == nil {
				t.Fatalf("reply %d %s (%s), want 200 with a session", r.StatusCode, r.ErrorType, r.ErrorMessage)
			}
			// Only the token's times are judged as of the publish time: the
			// session starts now.
			if !r.Session.StartedAt.Equal(tc.now) || !r.Session.ExpiresAt.Equal(tc.now.Add(30*time.Minute)) {
				t.Errorf("session %v to %v, want %v to %v", r.Session.StartedAt, r.Session.ExpiresAt, tc.now, tc.now.Add(30*time.Minute))
			}
			if holder, ok := e.replays.Holder(e.profile.ProfileID, jti); !ok || holder != "timed" {
				t.Errorf("replay claim held by %q (%v), want timed", holder, ok)
			}
			evs := e.eventsFor("timed")
			if len(evs) != 1 || evs[0].Type != domain.EventSessionCreated {
				t.Fatalf("events: %+v", evs)
			}
			var d handlers.AttestEventData
			_ = json.Unmarshal(evs[0].Data, &d)
			if d.TokenID != jti || d.Session == nil || d.Session.SessionID != r.Session.SessionID {
				t.Errorf("session.created data: %+v", d)
			}
		})
	}
}
