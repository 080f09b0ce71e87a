package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/client"
)

// These examples run against the real worker TestMain starts; natsURL is
// its NATS server. mintToken stands in for your identity provider: it signs
// a trusted token (a JWT with email and jti claims) with the key whose
// public half idp.PublicPEM() returns. TestMain also applies the profile
// and the user of Example (setupExamples), so each example runs alone.

func mintToken(email string) string {
	return idp.Token(map[string]any{"email": email, "jti": uuid.NewString()})
}

// exampleProfile and exampleUser are what an admin tool applied before
// Example runs.
var (
	exampleProfile = func() client.ProfileSpec {
		return client.ProfileSpec{
			ProfileID: "trusted-auth-token-profile-example", Issuer: idp.Iss, Audience: idp.Aud,
			PublicKeys:       []string{idp.PublicPEM()},
			AttributeMapping: client.AttributeMapping{Email: "email", TokenID: "jti"},
		}
	}
	exampleUser = client.UserSpec{
		UserID: "user-example-ada", Emails: []client.UserEmail{{Email: "ada@example.org", Verified: true}},
	}
)

// setupExamples applies exampleProfile and exampleUser.
func setupExamples(nc *nats.Conn) error {
	c, err := client.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := c.ApplyProfile(ctx, client.ProfileCommand{Profile: exampleProfile()}); err != nil {
		return err
	}
	_, err = c.ApplyUser(ctx, client.UserCommand{User: exampleUser})
	return err
}

// A service exchanges a trusted token for a session, checks the session,
// and ends it. (An admin tool made the profile and the user beforehand;
// here the example makes them too.)
func Example() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Admin: trust the identity provider, and register Ada.
	_, err = c.ApplyProfile(ctx, client.ProfileCommand{Profile: client.ProfileSpec{
		ProfileID: "trusted-auth-token-profile-example", Issuer: idp.Iss, Audience: idp.Aud,
		PublicKeys:       []string{idp.PublicPEM()},
		AttributeMapping: client.AttributeMapping{Email: "email", TokenID: "jti"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.ApplyUser(ctx, client.UserCommand{User: client.UserSpec{
		UserID: "user-example-ada", Emails: []client.UserEmail{{Email: "ada@example.org", Verified: true}},
	}})
	if err != nil {
		log.Fatal(err)
	}

	// A service: exchange Ada's trusted token for a 60-minute session.
	tok := client.NewSecret(mintToken("ada@example.org"))
	res, err := c.Attest(ctx, client.AttestRequest{
		ProfileID: "trusted-auth-token-profile-example", Token: tok, SessionDurationMinutes: 60,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("attest:", res.StatusCode, res.UserID, res.Session != nil)
	fmt.Println("request:", client.AttestRequest{Token: tok}.Token) // secrets print REDACTED

	// The same token again is refused.
	_, err = c.Attest(ctx, client.AttestRequest{ProfileID: "trusted-auth-token-profile-example", Token: tok})
	fmt.Println("replayed:", errors.Is(err, client.ErrTokenReplayed))

	// Later: check the session, then end it.
	auth, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: res.SessionToken})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("authenticate:", auth.StatusCode, auth.Session.SessionID == res.Session.SessionID)
	if _, err := c.Revoke(ctx, client.RevokeRequest{SessionToken: res.SessionToken}); err != nil {
		log.Fatal(err)
	}
	_, err = c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: res.SessionToken})
	fmt.Println("after revoke:", errors.Is(err, client.ErrSessionNotFound))
	// Output:
	// attest: 200 user-example-ada true
	// request: REDACTED
	// replayed: true
	// authenticate: 200 true
	// after revoke: true
}

// In a locked-down deployment each application may publish only on its
// own <prefix>.attest.requests.<app> and subscribe only to its own inboxes
// (_INBOX_<app>.>): give the connection that inbox prefix, and the client
// the app name.
func Example_lockedDown() {
	nc, err := nats.Connect(natsURL, nats.CustomInboxPrefix("_INBOX_billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithApp("billing"), client.WithTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Attest(context.Background(), client.AttestRequest{
		ProfileID: "trusted-auth-token-profile-example", Token: client.NewSecret(mintToken("ada@example.org")),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, res.UserID)
	// Output:
	// 200 user-example-ada
}

// A refusal is an *Error: errors.Is compares its error_type with the
// sentinels, errors.As reads it. No usable answer is a *TransportError.
func ExampleClient_Attest_errors() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	_, err = c.Attest(ctx, client.AttestRequest{ProfileID: "no-such-profile", Token: client.NewSecret(mintToken("ada@example.org"))})
	var refusal *client.Error
	switch {
	case errors.Is(err, client.ErrTrustedTokenProfileNotFound) && errors.As(err, &refusal):
		fmt.Println("refused:", refusal.StatusCode, refusal.Type)
	case err != nil:
		log.Fatal(err)
	}

	// Nobody serves this prefix: a transport error, at once.
	other, _ := client.New(nc, client.WithPrefix("elsewhere"))
	_, err = other.Attest(ctx, client.AttestRequest{ProfileID: "p", Token: client.NewSecret("t")})
	var transport *client.TransportError
	fmt.Println("transport:", errors.As(err, &transport), errors.Is(err, client.ErrNoStream))
	// Output:
	// refused: 404 trusted_token_profile_not_found
	// transport: true true
}

// Profile commands take an optional expected version: 0 means "must not
// exist yet".
func ExampleClient_ApplyProfile() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	spec := client.ProfileSpec{
		ProfileID: "trusted-auth-token-profile-" + client.NewID(), Name: "Partner SSO",
		Issuer: "https://sso.partner.example/", Audience: "my-app",
		JWKSURL:          "https://sso.partner.example/.well-known/jwks.json",
		AttributeMapping: client.AttributeMapping{Email: "email", TokenID: "jti", RoleIDs: "groups"},
		CanJITProvision:  true,
	}
	res, err := c.ApplyProfile(ctx, client.ProfileCommand{ExpectedVersion: client.ExpectVersion(0), Profile: spec})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, res.Profile.Version, res.Profile.Name)

	_, err = c.ApplyProfile(ctx, client.ProfileCommand{ExpectedVersion: client.ExpectVersion(0), Profile: spec})
	fmt.Println(errors.Is(err, client.ErrVersionConflict))
	// Output:
	// 200 1 Partner SSO
	// true
}

// Events replays the audit log: here every event about one user since a
// moment, then stops once caught up.
func ExampleClient_Events() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	since := time.Now()

	// Grace signs in for the first time: the profile provisions her.
	_, err = c.ApplyProfile(ctx, client.ProfileCommand{Profile: client.ProfileSpec{
		ProfileID: "trusted-auth-token-profile-events", Issuer: idp.Iss, Audience: idp.Aud,
		PublicKeys:       []string{idp.PublicPEM()},
		AttributeMapping: client.AttributeMapping{Email: "email", TokenID: "jti"}, CanJITProvision: true,
	}})
	if err != nil {
		log.Fatal(err)
	}
	email := "grace-" + client.NewID() + "@example.org"
	res, err := c.Attest(ctx, client.AttestRequest{ProfileID: "trusted-auth-token-profile-events",
		Token: client.NewSecret(mintToken(email)), SessionDurationMinutes: 30})
	if err != nil {
		log.Fatal(err)
	}

	filter := client.EventFilter{StartTime: since, UserID: res.UserID, UntilCaughtUp: true}
	for ev, err := range c.Events(ctx, filter) {
		if err != nil {
			log.Fatal(err)
		}
		switch d := ev.Data.(type) {
		case *client.UserResult:
			fmt.Println(ev.Type, d.User.Emails[0].Email == email, d.User.Emails[0].Verified)
		case *client.SessionEventData:
			fmt.Println(ev.Type, d.Session.SessionID == res.Session.SessionID, d.SessionRevision)
		}
	}
	// Output:
	// tat.user.created true true
	// tat.session.created true 1
}

// SessionJWKS returns the keys that verify session JWTs, for services that
// check a session JWT themselves instead of calling Authenticate.
func ExampleClient_SessionJWKS() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := c.SessionJWKS(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	k := keys.Keys[0]
	pub, err := k.PublicKey()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.Alg, k.Use, strings.HasPrefix(k.Kid, "tat-"), pub.Curve.Params().Name)
	// Output:
	// ES256 sig true P-256
}

// An operator (the admin identity of a locked-down deployment: session and
// user ids are not secrets, so applications revoke only with a session
// token or JWT) ends every active session of a user, or one session by
// its id.
func ExampleClient_AdminRevoke() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	var started []*client.AttestResult
	for range 2 {
		res, err := c.Attest(ctx, client.AttestRequest{
			ProfileID: "trusted-auth-token-profile-example", Token: client.NewSecret(mintToken("ada@example.org")), SessionDurationMinutes: 60,
		})
		if err != nil {
			log.Fatal(err)
		}
		started = append(started, res)
	}
	one, err := c.AdminRevoke(ctx, client.AdminRevokeRequest{SessionID: started[0].Session.SessionID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("by id:", one.StatusCode, one.Session.SessionID == started[0].Session.SessionID)
	all, err := c.AdminRevoke(ctx, client.AdminRevokeRequest{UserID: "user-example-ada"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("by user:", all.StatusCode, slices.Contains(all.RevokedSessionIDs, started[1].Session.SessionID))
	_, err = c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: started[1].SessionToken})
	fmt.Println("after revoke:", errors.Is(err, client.ErrSessionNotFound))
	// Output:
	// by id: 200 true
	// by user: 200 true
	// after revoke: true
}

// A Secret prints REDACTED however it is formatted, marshaled or logged;
// Reveal returns the value.
func ExampleSecret() {
	s := client.NewSecret("tat_st_abc")
	fmt.Printf("%v %s %d %+v\n", s, s, s, client.AuthenticateRequest{SessionToken: s})
	fmt.Println(s.Reveal())
	// Output:
	// REDACTED REDACTED REDACTED {SessionToken:REDACTED SessionJWT:REDACTED SessionDurationMinutes:0}
	// tat_st_abc
}
