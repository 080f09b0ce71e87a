package domain_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

// A trusted token signed with an Ed25519 key the profile holds as PEM is
// verified against the profile's policy; the mapped email and token id come
// back.
func ExampleVerifyToken() {
	// The issuer's key. A fixed seed keeps the example's output stable.
	priv := ed25519.NewKeyFromSeed([]byte("an example seed of 32 bytes....."))
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		panic(err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	profile, err := domain.NewProfile(domain.ProfileSpec{
		ProfileID:        "trusted-auth-token-profile-example",
		Issuer:           "https://idp.example.com/",
		Audience:         "my-app",
		PublicKeys:       []string{pemText},
		AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"},
	}, domain.ProfileRules{}, 1, time.Time{}, time.Time{})
	if err != nil {
		panic(err)
	}

	// The issuer signs a token (what an identity provider does).
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	token, err := domain.SignJWT(priv, "EdDSA", profile.StaticKeys()[0].KID, map[string]any{
		"iss": "https://idp.example.com/", "aud": "my-app",
		"email": "ada@example.com", "jti": "tok-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	if err != nil {
		panic(err)
	}

	// The worker verifies it.
	vt, err := domain.VerifyToken(token, profile.Policy(time.Minute, 0), profile.StaticKeys(), now)
	if err != nil {
		panic(err)
	}
	fmt.Println(vt.Email, vt.TokenID, vt.Alg)

	// An hour later the same token has expired.
	_, err = domain.VerifyToken(token, profile.Policy(time.Minute, 0), profile.StaticKeys(), now.Add(time.Hour))
	fmt.Println(domain.AsError(err).Code, errors.Is(err, domain.ErrExpired))
	// Output:
	// ada@example.com tok-1 EdDSA
	// jwt_expired true
}

// A payload with a field the contract does not know is refused with
// invalid_request; the message names the field, never a value.
func ExampleDecodeStrict() {
	var req domain.AttestRequest
	err := domain.DecodeStrict([]byte(`{"profile_id":"p-1","token":"eyJ...","tokn":"eyJ..."}`), &req)
	e := domain.AsError(err)
	fmt.Println(e.Code, e.Status)
	fmt.Println(e.Message)
	// Output:
	// invalid_request 400
	// payload is not valid: unknown field "tokn"
}

func ExampleAttestRequest_Validate() {
	var req domain.AttestRequest
	payload := `{"profile_id":"p-1","token":"eyJ...","session_duration_minutes":60,` +
		`"session_custom_claims":{"plan":"pro","sub":"someone-else"}}`
	if err := domain.DecodeStrict([]byte(payload), &req); err != nil {
		panic(err)
	}
	_, err := req.Validate()
	fmt.Println(domain.AsError(err).Code)
	// Output:
	// reserved_claims_in_custom_claims
}

// Printing a Secret, logging it or writing it as JSON shows REDACTED;
// Reveal is the one way to the value.
func ExampleSecret() {
	s := domain.NewSecret("tat_st_abc123")
	fmt.Println(s)
	fmt.Printf("%v %s %q\n", s, s, s)
	b, _ := json.Marshal(map[string]any{"session_token": s})
	fmt.Println(string(b))
	fmt.Println(strings.HasPrefix(s.Reveal(), domain.SessionTokenPrefix))
	// Output:
	// REDACTED
	// REDACTED REDACTED "REDACTED"
	// {"session_token":"REDACTED"}
	// true
}

// Custom claims sent on an existing session merge into its claims; a null
// value deletes a key.
func ExampleMergeClaims() {
	session := map[string]any{"plan": "free", "seats": 3}
	update := map[string]any{"plan": "pro", "seats": nil, "region": "eu"}
	fmt.Println(domain.MergeClaims(session, update))
	// Output:
	// map[plan:pro region:eu]
}

// Emails match case-insensitively: the normalized form names the JIT user.
func ExampleJITUserID() {
	a, _ := domain.NormalizeEmail("Ada@Example.com")
	b, _ := domain.NormalizeEmail(" ada@EXAMPLE.com ")
	fmt.Println(a)
	fmt.Println(domain.JITUserID(a) == domain.JITUserID(b))
	fmt.Println(domain.JITUserID(a))
	// Output:
	// ada@example.com
	// true
	// user-380c96ad-3f94-8f3c-a9d3-57e60db07769
}

// A session token is derived from the session id with the fleet's key, so
// any worker re-derives it and the store never keeps it.
func ExampleIssuer_SessionToken() {
	is := &domain.Issuer{TokenKey: []byte("0123456789abcdef0123456789abcdef")}
	tok := is.SessionToken("session-1")
	fmt.Println(tok)
	fmt.Println(tok.Reveal() == is.SessionToken("session-1").Reveal())
	fmt.Println(len(strings.TrimPrefix(tok.Reveal(), domain.SessionTokenPrefix)))
	// Output:
	// REDACTED
	// true
	// 43
}
