package client_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/client"
)

// TestAttest: each way an attest can succeed, against a real worker.
func TestAttest(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)

	t.Run("new session", func(t *testing.T) {
		res := f.attest(t, 60)
		if res.StatusCode != 200 || res.UserID != f.userID || res.User == nil || res.User.UserID != f.userID {
			t.Fatalf("result = %+v", res)
		}
		s := res.Session
		if s == nil || !strings.HasPrefix(s.SessionID, "session-") || s.UserID != f.userID {
			t.Fatalf("session = %+v", s)
		}
		if d := s.ExpiresAt.Sub(s.StartedAt); d != time.Hour {
			t.Errorf("session lasts %s, want 1h", d)
		}
		if len(s.AuthenticationFactors) != 1 || s.AuthenticationFactors[0].TrustedAuthTokenFactor.ProfileID != f.profile {
			t.Errorf("factors = %+v", s.AuthenticationFactors)
		}
		if !strings.HasPrefix(res.SessionToken.Reveal(), "tat_st_") || strings.Count(res.SessionJWT.Reveal(), ".") != 2 {
			t.Errorf("secrets: token %d bytes, jwt %d bytes", len(res.SessionToken.Reveal()), len(res.SessionJWT.Reveal()))
		}
	})

	t.Run("verify only", func(t *testing.T) {
		res := f.attest(t, 0)
		if res.StatusCode != 200 || res.UserID != f.userID || res.Session != nil || !res.SessionToken.Empty() || !res.SessionJWT.Empty() {
			t.Fatalf("result = %+v", res)
		}
	})

	t.Run("custom claims and roles", func(t *testing.T) {
		res, err := c.Attest(ctx, client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"roles": []string{"admin"}}),
			SessionDurationMinutes: 5, SessionCustomClaims: map[string]any{"plan": "pro"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Session.CustomClaims["plan"] != "pro" || len(res.Session.Roles) != 1 || res.Session.Roles[0] != "admin" {
			t.Fatalf("session = %+v", res.Session)
		}
	})

	t.Run("attach to a session by token and by JWT", func(t *testing.T) {
		first := f.attest(t, 30)
		for name, req := range map[string]client.AttestRequest{
			"session_token": {ProfileID: f.profile, Token: token(f.email, nil), SessionToken: first.SessionToken},
			"session_jwt":   {ProfileID: f.profile, Token: token(f.email, nil), SessionJWT: first.SessionJWT},
		} {
			res, err := c.Attest(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if res.Session == nil || res.Session.SessionID != first.Session.SessionID {
				t.Errorf("%s: attached to %+v, want %s", name, res.Session, first.Session.SessionID)
			}
		}
	})

	t.Run("just-in-time user", func(t *testing.T) {
		email := "jit-" + uuid.NewString()[:8] + "@example.com"
		res, err := c.Attest(ctx, client.AttestRequest{ProfileID: f.profile, Token: token(email, nil)})
		if err != nil {
			t.Fatal(err)
		}
		if res.User == nil || len(res.User.Emails) != 1 || res.User.Emails[0].Email != email || !res.User.Emails[0].Verified {
			t.Fatalf("user = %+v", res.User)
		}
	})

	t.Run("generated request id", func(t *testing.T) {
		res := f.attest(t, 0)
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(res.RequestID) {
			t.Fatalf("request_id = %q", res.RequestID)
		}
	})
}

// TestAttestRefusals: every refusal an attest can get comes back as an
// *Error that errors.Is matches with its sentinel (and with no other), with
// its status code and the request's id.
func TestAttestRefusals(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)

	other := newFixture(t, c) // another user, for user_id_mismatch
	otherSession := other.attest(t, 30)
	disabled := newFixture(t, c)
	if _, err := c.ApplyUser(ctx, client.UserCommand{User: client.UserSpec{UserID: disabled.userID,
		Emails: []client.UserEmail{{Email: disabled.email}}, Status: client.UserDisabled}}); err != nil {
		t.Fatal(err)
	}
	noJIT := testProfile("profile-nojit-" + uuid.NewString()[:8])
	noJIT.CanJITProvision = false
	if _, err := c.ApplyProfile(ctx, client.ProfileCommand{Profile: noJIT}); err != nil {
		t.Fatal(err)
	}
	replayed := token(f.email, nil)
	if _, err := c.Attest(ctx, client.AttestRequest{ProfileID: f.profile, Token: replayed}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	bigClaims := map[string]any{"blob": strings.Repeat("x", 5000)}

	cases := []struct {
		name string
		req  client.AttestRequest
		want *client.Error
	}{
		{"empty token", client.AttestRequest{ProfileID: f.profile}, client.ErrInvalidRequest},
		{"no profile", client.AttestRequest{Token: token(f.email, nil)}, client.ErrInvalidRequest},
		{"duration too short", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 4}, client.ErrInvalidSessionDurationMinutes},
		{"reserved claim", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 5, SessionCustomClaims: map[string]any{"Sub": "x"}}, client.ErrReservedClaimsInCustomClaims},
		{"claims too large", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 5, SessionCustomClaims: bigClaims}, client.ErrCustomClaimsTooLarge},
		{"token and jwt", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionToken: client.NewSecret("tat_st_x"), SessionJWT: client.NewSecret("a.b.c")}, client.ErrTooManySessionArguments},
		{"not a JWT", client.AttestRequest{ProfileID: f.profile, Token: client.NewSecret("not-a-jwt")}, client.ErrInvalidTrustedAuthToken},
		{"other issuer", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"iss": "https://evil.example.com/"})}, client.ErrJWTInvalidIssuer},
		{"other audience", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"aud": "other-app"})}, client.ErrJWTInvalidAudience},
		{"expired", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})}, client.ErrJWTExpired},
		{"not yet valid", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"nbf": now + 3600, "exp": now + 7200})}, client.ErrJWTNotYetValid},
		{"no email claim", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, map[string]any{"email": nil})}, client.ErrJWTInvalidClaims},
		{"replayed token", client.AttestRequest{ProfileID: f.profile, Token: replayed}, client.ErrTokenReplayed},
		{"unknown profile", client.AttestRequest{ProfileID: "no-such-profile", Token: token(f.email, nil)}, client.ErrTrustedTokenProfileNotFound},
		{"no user, no JIT", client.AttestRequest{ProfileID: noJIT.ProfileID, Token: token("nobody-"+uuid.NewString()[:8]+"@example.com", nil)}, client.ErrUserNotFound},
		{"disabled user", client.AttestRequest{ProfileID: f.profile, Token: token(disabled.email, nil)}, client.ErrUserNotFound},
		{"unknown session", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionToken: client.NewSecret("tat_st_unknown")}, client.ErrSessionNotFound},
		{"another user's session", client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionToken: otherSession.SessionToken}, client.ErrUserIDMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.RequestID = "refusal-" + uuid.NewString()
			res, err := c.Attest(ctx, tc.req)
			if res != nil {
				t.Errorf("a refusal returned a result: %+v", res)
			}
			e := refusal(t, err, tc.want)
			if e.ID != tc.req.RequestID {
				t.Errorf("error id = %q, want %q", e.ID, tc.req.RequestID)
			}
			for _, s := range []*client.Error{client.ErrInternalServerError, client.ErrVersionConflict} {
				if errors.Is(err, s) {
					t.Errorf("%v also matches %s", err, s.Type)
				}
			}
			// One attest.failed event names the request and the same error.
			evs := eventsOf(t, c, tc.req.RequestID)
			if len(evs) != 1 || evs[0].Type != client.EventAttestFailed {
				t.Fatalf("events of %s: %d, want one attest.failed", tc.req.RequestID, len(evs))
			}
			if d := evs[0].Data.(*client.AttestFailedData); !errors.Is(d.Err(), tc.want) {
				t.Errorf("event error = %v", d.Err())
			}
		})
	}

	t.Run("jwks unavailable", func(t *testing.T) {
		p := testProfile("profile-jwks-" + uuid.NewString()[:8])
		p.PublicKeys, p.JWKSURL = nil, "http://127.0.0.1:1/jwks.json"
		if _, err := c.ApplyProfile(ctx, client.ProfileCommand{Profile: p}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Attest(ctx, client.AttestRequest{ProfileID: p.ProfileID, Token: token(f.email, map[string]any{"iss": idp.Iss})})
		refusal(t, err, client.ErrJWKSUnavailable)
	})

	t.Run("bad request id is refused before sending", func(t *testing.T) {
		nc := connect(t)
		sub, err := nc.SubscribeSync("tat.attest.requests.>")
		if err != nil {
			t.Fatal(err)
		}
		sub2, _ := nc.SubscribeSync("tat.attest.requests")
		_ = nc.Flush()
		for _, id := range []string{"bad id", "id\r\nNats-Msg-Id: x", strings.Repeat("a", 129), "ü"} {
			_, err := c.Attest(ctx, client.AttestRequest{RequestID: id, ProfileID: f.profile, Token: token(f.email, nil)})
			e := refusal(t, err, client.ErrInvalidRequest)
			if !strings.Contains(e.Message, "nothing was sent") {
				t.Errorf("message = %q", e.Message)
			}
		}
		for _, s := range []*nats.Subscription{sub, sub2} {
			if m, err := s.NextMsg(200 * time.Millisecond); err == nil {
				t.Errorf("a refused request was published: %s", m.Subject)
			}
		}
	})
}

// TestAttestWire: what the client puts on the bus: the subject (with
// WithApp), Nats-Msg-Id equal to request_id, Tat-Reply-To a fresh inbox of
// the connection's prefix, and a payload of contract members only.
func TestAttestWire(t *testing.T) {
	nc := connect(t, nats.CustomInboxPrefix("_INBOX_billing"))
	c, err := client.New(nc, client.WithApp("billing"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, newClient(t))
	spy := connect(t)
	sub, err := spy.SubscribeSync("tat.attest.requests.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	inboxes := map[string]bool{}
	for range 2 {
		res, err := c.Attest(ctx, client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 5})
		if err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "tat.attest.requests.billing" {
			t.Errorf("subject = %s", m.Subject)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got != res.RequestID {
			t.Errorf("Nats-Msg-Id = %q, request_id %q", got, res.RequestID)
		}
		inbox := m.Header.Get(client.ReplyHeader)
		if !strings.HasPrefix(inbox, "_INBOX_billing.") || inboxes[inbox] {
			t.Errorf("Tat-Reply-To = %q (seen before: %v)", inbox, inboxes[inbox])
		}
		inboxes[inbox] = true
		want := `{"request_id":"` + res.RequestID + `","profile_id":"` + f.profile + `","token":"`
		if !strings.HasPrefix(string(m.Data), want) || !strings.HasSuffix(string(m.Data), `","session_duration_minutes":5}`) {
			t.Errorf("payload = %s", m.Data)
		}
	}
}

// TestAttestSameIDTwice: two calls with one request id, concurrently and
// one after the other, get one outcome (the same session) and the worker
// publishes one event. The second publication lands in JetStream's
// duplicate window (its ack says duplicate, and its reply goes to the
// first caller): the client publishes it again past the window, and the
// worker answers with the stored outcome.
func TestAttestSameIDTwice(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)
	req := client.AttestRequest{RequestID: "twice-" + uuid.NewString(), ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 10}
	results := make(chan *client.AttestResult, 3)
	errs := make(chan error, 3)
	for range 2 {
		go func() {
			res, err := c.Attest(ctx, req)
			results <- res
			errs <- err
		}()
	}
	var ids []string
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		ids = append(ids, (<-results).Session.SessionID)
	}
	res, err := c.Attest(ctx, req) // later: answered from the stored outcome
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, res.Session.SessionID)
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("sessions = %v, want one", ids)
	}
	if evs := eventsOf(t, c, req.RequestID); len(evs) != 1 || evs[0].Type != client.EventSessionCreated {
		t.Fatalf("events = %d, want one session.created", len(evs))
	}
	// Another request under the same id is refused, never given the outcome.
	req.Token = token(f.email, nil)
	_, err = c.Attest(ctx, req)
	refusal(t, err, client.ErrInvalidRequest)
}
