package client_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/client"
)

// TestAuthenticate: the sessions service's authenticate, by token and by
// JWT, with a new duration, and each refusal by errors.Is.
func TestAuthenticate(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)
	s := f.attest(t, 60)

	t.Run("by session token", func(t *testing.T) {
		res, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: s.SessionToken})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Session.SessionID != s.Session.SessionID || res.User.UserID != f.userID {
			t.Fatalf("result = %+v", res)
		}
		if res.SessionToken.Reveal() != s.SessionToken.Reveal() || res.SessionJWT.Empty() {
			t.Error("authenticate by token should return the token and a fresh JWT")
		}
	})
	t.Run("by session JWT", func(t *testing.T) {
		res, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionJWT: s.SessionJWT})
		if err != nil {
			t.Fatal(err)
		}
		if res.Session.SessionID != s.Session.SessionID || !res.SessionToken.Empty() || res.SessionJWT.Empty() {
			t.Fatalf("a JWT alone must not buy the session token: %+v", res)
		}
	})
	t.Run("with a new duration", func(t *testing.T) {
		res, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: s.SessionToken, SessionDurationMinutes: 600})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(res.Session.ExpiresAt); d < 9*time.Hour || d > 11*time.Hour {
			t.Errorf("expires in %s, want about 10h", d)
		}
	})
	for _, tc := range []struct {
		name string
		req  client.AuthenticateRequest
		want *client.Error
	}{
		{"neither", client.AuthenticateRequest{}, client.ErrInvalidRequest},
		{"both", client.AuthenticateRequest{SessionToken: s.SessionToken, SessionJWT: s.SessionJWT}, client.ErrTooManySessionArguments},
		{"bad duration", client.AuthenticateRequest{SessionToken: s.SessionToken, SessionDurationMinutes: 1}, client.ErrInvalidSessionDurationMinutes},
		{"unknown token", client.AuthenticateRequest{SessionToken: client.NewSecret("tat_st_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}, client.ErrSessionNotFound},
		{"forged JWT", client.AuthenticateRequest{SessionJWT: client.NewSecret("eyJhbGciOiJub25lIn0.e30.")}, client.ErrSessionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Authenticate(ctx, tc.req)
			if res != nil {
				t.Errorf("result on refusal: %+v", res)
			}
			refusal(t, err, tc.want)
		})
	}
}

// TestRevoke: revoke by token and by JWT ends the session (it then no
// longer authenticates), a second revoke answers 200 again, and the
// refusals match their sentinels.
func TestRevoke(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)
	for _, by := range []string{"session_token", "session_jwt"} {
		t.Run(by, func(t *testing.T) {
			s := f.attest(t, 60)
			req := client.RevokeRequest{}
			switch by {
			case "session_token":
				req.SessionToken = s.SessionToken
			case "session_jwt":
				req.SessionJWT = s.SessionJWT
			}
			for range 2 {
				res, err := c.Revoke(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != 200 || res.Session == nil || res.Session.SessionID != s.Session.SessionID {
					t.Fatalf("result = %+v", res)
				}
			}
			_, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: s.SessionToken})
			refusal(t, err, client.ErrSessionNotFound)
		})
	}
	for _, tc := range []struct {
		name string
		req  client.RevokeRequest
		want *client.Error
	}{
		{"nothing", client.RevokeRequest{}, client.ErrInvalidRequest},
		{"two", client.RevokeRequest{SessionToken: client.NewSecret("tat_st_x"), SessionJWT: client.NewSecret("x.y.z")}, client.ErrInvalidRequest},
		{"unknown token", client.RevokeRequest{SessionToken: client.NewSecret("tat_st_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}, client.ErrSessionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Revoke(ctx, tc.req)
			refusal(t, err, tc.want)
		})
	}
}

// TestAdminRevoke: the operators' revoke by id, token and JWT ends the
// session, a second one answers 200 again, and the refusals match their
// sentinels.
func TestAdminRevoke(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)
	for _, by := range []string{"session_id", "session_token", "session_jwt"} {
		t.Run(by, func(t *testing.T) {
			s := f.attest(t, 60)
			req := client.AdminRevokeRequest{}
			switch by {
			case "session_id":
				req.SessionID = s.Session.SessionID
			case "session_token":
				req.SessionToken = s.SessionToken
			case "session_jwt":
				req.SessionJWT = s.SessionJWT
			}
			for range 2 {
				res, err := c.AdminRevoke(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != 200 || res.Session == nil || res.Session.SessionID != s.Session.SessionID {
					t.Fatalf("result = %+v", res)
				}
			}
			_, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: s.SessionToken})
			refusal(t, err, client.ErrSessionNotFound)
		})
	}
	for _, tc := range []struct {
		name string
		req  client.AdminRevokeRequest
		want *client.Error
	}{
		{"nothing", client.AdminRevokeRequest{}, client.ErrInvalidRequest},
		{"two", client.AdminRevokeRequest{SessionID: "session-x", SessionToken: client.NewSecret("tat_st_x")}, client.ErrInvalidRequest},
		{"unknown id", client.AdminRevokeRequest{SessionID: "session-00000000-0000-4000-8000-000000000000"}, client.ErrSessionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AdminRevoke(ctx, tc.req)
			refusal(t, err, tc.want)
		})
	}
}

// TestRevokeByUser: the operators' revoke by user_id ends every active
// session of the user and names them.
func TestRevokeByUser(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	ctx := testCtx(t)
	a, b := f.attest(t, 60), f.attest(t, 60)
	res, err := c.AdminRevoke(ctx, client.AdminRevokeRequest{UserID: f.userID})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.RevokedSessionIDs, ",")
	if res.StatusCode != 200 || len(res.RevokedSessionIDs) != 2 || !strings.Contains(got, a.Session.SessionID) || !strings.Contains(got, b.Session.SessionID) {
		t.Fatalf("result = %+v, want sessions %s and %s", res, a.Session.SessionID, b.Session.SessionID)
	}
	for _, s := range []*client.AttestResult{a, b} {
		_, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: s.SessionToken})
		refusal(t, err, client.ErrSessionNotFound)
	}
	res, err = c.AdminRevoke(ctx, client.AdminRevokeRequest{UserID: f.userID})
	if err != nil || len(res.RevokedSessionIDs) != 0 {
		t.Fatalf("second revoke: %+v, %v; want none ended", res, err)
	}
	_, err = c.AdminRevoke(ctx, client.AdminRevokeRequest{UserID: "user-never-was"})
	refusal(t, err, client.ErrUserNotFound)
}

// TestSessionJWKS: the keys verify a session JWT the worker signed.
func TestSessionJWKS(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	s := f.attest(t, 5)
	keys, err := c.SessionJWKS(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) == 0 {
		t.Fatal("no keys")
	}
	parts := strings.Split(s.SessionJWT.Reveal(), ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr struct{ Alg, Kid string }
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg != "ES256" {
		t.Fatalf("header %s: %v", hb, err)
	}
	k, ok := keys.Key(hdr.Kid)
	if !ok {
		t.Fatalf("no key %q in %+v", hdr.Kid, keys)
	}
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if len(sig) != 64 || !ecdsa.Verify(pub, sum[:], r, ss) {
		t.Fatal("the session JWT does not verify with its JWKS key")
	}
	if _, err := (client.JWK{Kty: "RSA", Kid: "x"}).PublicKey(); err == nil {
		t.Error("PublicKey accepted an RSA JWK")
	}
	if _, err := (client.JWK{Kty: "EC", Crv: "P-256", X: k.Y, Y: k.X}).PublicKey(); err == nil {
		t.Error("PublicKey accepted a point off the curve")
	}
}
