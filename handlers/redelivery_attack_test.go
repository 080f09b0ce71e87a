package handlers_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// switchKeys is a KeySource for a JWKS profile that serves keys until
// down is set, then fails as an unreachable JWKS endpoint does (a
// restarted worker's key cache is cold).
type switchKeys struct {
	keys []domain.PublicKey
	down *atomic.Bool
}

func (k switchKeys) Keys(context.Context, string) ([]domain.PublicKey, error) {
	if k.down.Load() {
		return nil, domain.ErrJWKSUnavailable.Wrap(errNoJWKS, "")
	}
	return k.keys, nil
}

func (k switchKeys) RefreshUnknownKID(ctx context.Context, url string) ([]domain.PublicKey, error) {
	return k.Keys(ctx, url)
}

func (k switchKeys) Ensure(context.Context, string) error { return nil }

// TestRedeliveryRefusedBeforeFindUserAnnouncesItsJITUser: a first delivery
// on a JIT profile records the user.created of the user it makes, writes
// the user, and dies before publishing the event. Between deliveries
// something changes that makes the redelivery refuse the request before it
// looks for the user (the JWKS endpoint is down and the restarted worker's
// key cache is cold; an admin rotated the profile's keys; the session the
// request names was revoked). The refusal is the request's outcome, so no
// Abandon follows: the redelivery itself must announce the JIT user.
func TestRedeliveryRefusedBeforeFindUserAnnouncesItsJITUser(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"jwks down after restart", "profile keys rotated", "named session revoked"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			var down atomic.Bool
			if change == "jwks down after restart" {
				p, err := domain.NewProfile(domain.ProfileSpec{
					ProfileID: e.profile.ProfileID, Name: "Test IdP",
					Issuer: e.idp.iss, Audience: e.idp.aud, JWKSURL: "https://idp.example.com/.well-known/jwks.json",
					AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"},
					CanJITProvision:  true,
				}, domain.ProfileRules{}, 2, t0, t0)
				if err != nil {
					t.Fatal(err)
				}
				e.attest.Keys = switchKeys{keys: e.profile.StaticKeys(), down: &down}
				e.profile = p
				e.view.PutProfile(p, false)
			}
			tok, _ := e.token(t, "jit@example.com", t0)
			payload := map[string]any{"request_id": "jit-early", "token": tok, "session_duration_minutes": 30}
			var sid string
			if change == "named session revoked" {
				e.addUser(t, "user-other", "other@example.com", domain.UserActive)
				other := e.startSession(t, "other-start", "other@example.com")
				payload["session_token"], sid = other.SessionToken, other.Session.SessionID
			}

			// First delivery: the user is written, its user.created is not
			// published; the worker dies.
			e.pub.refuseType(domain.EventUserCreated)
			in := e.deliver(t, at("TAT_ATTEST", 11), payload, 1)
			jitID := domain.JITUserID("jit@example.com")
			u, ok := e.users.user(jitID)
			if !ok || len(e.pub.OfType(domain.EventUserCreated)) != 0 {
				t.Fatal("precondition: the JIT user is stored and unannounced")
			}
			e.view.PutUser(u, false) // the restarted worker's snapshot
			e.pub.refuseType("")

			switch change {
			case "jwks down after restart":
				down.Store(true)
			case "profile keys rotated":
				p, err := domain.NewProfile(domain.ProfileSpec{
					ProfileID: e.profile.ProfileID, Name: "Test IdP",
					Issuer: e.idp.iss, Audience: e.idp.aud, PublicKeys: []string{newIDP(t).publicPEM(t)},
					AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"},
					CanJITProvision:  true,
				}, domain.ProfileRules{}, 2, t0, t0)
				if err != nil {
					t.Fatal(err)
				}
				e.view.PutProfile(p, false)
			case "named session revoked":
				st, _ := e.view.Session(sid)
				st.Revoked, st.Revision = true, st.Revision+1
				e.view.PutSession(st)
			}

			in.Redelivered = true
			r := e.attestReply(t, in, payload)
			t.Logf("redelivery: %d %s", r.StatusCode, r.ErrorType)
			if n := len(e.eventsFor("jit-early")); n != 1 {
				t.Errorf("%d outcome events, want 1", n)
			}
			if n := len(e.pub.OfType(domain.EventUserCreated)); n != 1 {
				t.Errorf("%d user.created events, want 1: the JIT user %s is stored and never announced", n, jitID)
			}
		})
	}
}

// TestReusedRequestIDDoesNotGetAnotherRequestsJITUser: the JIT outbox is
// keyed by request id alone (attest-jit:<id>). A message that reuses the
// request id of a JIT login of victim@ with a token for attacker@ must not
// be handed the victim's user: not when the victim's request has no
// outcome yet (its worker died after recording the user; the attacker's
// request would win the outcome, with a session of the victim's user and
// its token and JWT in the reply), nor when it finished (a session of the
// victim's user would be stored that no event announces).
func TestReusedRequestIDDoesNotGetAnotherRequestsJITUser(t *testing.T) {
	t.Parallel()
	for _, victimFinished := range []bool{false, true} {
		name := "victim request unfinished"
		if victimFinished {
			name = "victim request finished"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			vtok, _ := e.token(t, "victim@example.com", t0)
			victim := map[string]any{"request_id": "shared-id", "token": vtok, "session_duration_minutes": 30}
			if victimFinished {
				if r := e.attestReply(t, at("TAT_ATTEST", 1), victim); r.StatusCode != 200 {
					t.Fatalf("victim: %+v", r)
				}
			} else {
				e.pub.refuseType(domain.EventUserCreated)
				e.deliver(t, at("TAT_ATTEST", 1), victim, 1)
				e.pub.refuseType("")
			}
			atok, _ := e.token(t, "attacker@example.com", t0)
			r := e.attestReply(t, at("TAT_ATTEST", 2), map[string]any{"request_id": "shared-id", "token": atok, "session_duration_minutes": 30})
			victimID := domain.JITUserID("victim@example.com")
			if r.UserID == victimID || r.SessionToken != "" && r.Session != nil && r.Session.UserID == victimID {
				t.Errorf("a token for attacker@ got the victim's user %s: session token %t, JWT %t", r.UserID, r.SessionToken != "", r.SessionJWT != "")
			}
			for id, st := range e.sessions.latest() {
				if st.Session.UserID == victimID && len(e.eventsFor("shared-id")) > 0 {
					var named bool
					for _, ev := range e.pub.Events() {
						if ev.Subject == id {
							named = true
						}
					}
					if !named {
						t.Errorf("session %s of the victim's user, started with the attacker's token, is stored and no event names it", id)
					}
				}
			}
		})
	}
}

// TestRedeliveryResumesJITUserWithASmallSkew: with TAT_CLOCK_SKEW=0 (a
// valid setting) the worker's clock 2 s behind the NATS server's: the
// first delivery makes the JIT user (created_at t0) for a request the
// stream stored at t0+2s, and dies before publishing user.created. The
// restarted worker's view holds the user; the redelivery must still read
// the JIT record and announce the user (mayHaveMade allows for
// redeliveryClockMargin, not only the token clock skew).
func TestRedeliveryResumesJITUserWithASmallSkew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.attest.Skew = 0
	tok, _ := e.token(t, "drift@example.com", t0)
	payload := map[string]any{"request_id": "drift", "token": tok, "session_duration_minutes": 30}
	in := at("TAT_ATTEST", 6)
	in.PublishedAt = t0.Add(2 * time.Second) // the NATS server's clock
	e.pub.refuseType(domain.EventUserCreated)
	in = e.deliver(t, in, payload, 1)
	jitID := domain.JITUserID("drift@example.com")
	u, ok := e.users.user(jitID)
	if !ok {
		t.Fatal("precondition: the JIT user is stored")
	}
	e.view.PutUser(u, false) // the restarted worker's snapshot
	e.pub.refuseType("")
	e.clock.Set(t0.Add(time.Minute))
	in.Redelivered = true
	if r := e.attestReply(t, in, payload); r.StatusCode != 200 {
		t.Fatalf("redelivery: %+v", r)
	}
	e.wantAllAnnounced(t)
}

// TestRedeliveryOfAFinishedRequestWhileTheViewLags: the request finished
// (its outcome is stored), the profile was deleted since, and the events
// stream cannot be caught up when the redelivery runs. The redelivery
// answers the stored outcome rather than failing transiently until its
// deliveries run out.
func TestRedeliveryOfAFinishedRequestWhileTheViewLags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-done", "done@example.com", domain.UserActive)
	tok, _ := e.token(t, "done@example.com", t0)
	payload := map[string]any{"request_id": "done", "token": tok, "session_duration_minutes": 30}
	in := at("TAT_ATTEST", 5)
	if r := e.attestReply(t, in, payload); r.StatusCode != 200 {
		t.Fatalf("first delivery: %+v", r)
	}
	p := e.profile
	p.Version++
	e.view.PutProfile(p, true)
	e.attest.Barrier = failingBarrier{}
	in.Redelivered = true
	in.Data, _ = json.Marshal(payload)
	if _, err := e.attest.Handle(context.Background(), in); err != nil {
		t.Errorf("redelivery of a finished request: %v, want its stored outcome", err)
	}
}
