package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

func TestPrecheckToken(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	raw := build(t, ks.p256, tok{header: map[string]any{"jku": "https://evil.example/jwks"}})
	p, err := domain.PrecheckToken(raw, 0)
	if err != nil {
		t.Fatalf("PrecheckToken: %v", err)
	}
	if p.Header != (domain.TokenHeader{Alg: "ES256", Kid: ks.p256.pub.KID, Typ: "JWT"}) {
		t.Errorf("Header = %+v", p.Header)
	}
	if p.UnverifiedIssuer() != testIssuer {
		t.Errorf("UnverifiedIssuer = %q", p.UnverifiedIssuer())
	}
	s := segments(raw)
	if string(p.SigningInput()) != s[0]+"."+s[1] {
		t.Errorf("SigningInput = %q", p.SigningInput())
	}
	if string(p.Signature()) != string(mustB64(t, s[2])) {
		t.Errorf("Signature differs from the third segment")
	}
	p.Signature()[0] ^= 1 // a copy: the parsed token is unchanged
	// Header is for reading: editing it does not change how Verify works.
	p.Header.Alg, p.Header.Kid = "RS256", ks.rsa.pub.KID
	vt, err := p.Verify(testPolicy(), ks.trusted(), testNow)
	if err != nil {
		t.Fatalf("Verify after Precheck: %v", err)
	}
	if vt.KID != ks.p256.pub.KID {
		t.Errorf("KID = %s", vt.KID)
	}

	// The size cap given to Precheck is checked again against the policy.
	pol := testPolicy()
	pol.MaxTokenBytes = len(raw) - 1
	if _, err := p.Verify(pol, ks.trusted(), testNow); !errors.Is(err, domain.ErrInvalidToken) {
		t.Errorf("Verify with a smaller cap: %v", err)
	}
	if _, err := domain.PrecheckToken(raw, len(raw)); err != nil {
		t.Errorf("a token exactly at the cap: %v", err)
	}
	if _, err := domain.PrecheckToken(raw, len(raw)-1); !errors.Is(err, domain.ErrInvalidToken) {
		t.Errorf("a token one byte over the cap: %v", err)
	}

	// Precheck does not verify: a forged token passes it, with its claimed
	// issuer, and fails Verify.
	forged := build(t, ks.attackerEd, tok{kid: ks.ed.pub.KID, claims: func(c map[string]any) { c["iss"] = 7 }})
	fp, err := domain.PrecheckToken(forged, 0)
	if err != nil {
		t.Fatalf("PrecheckToken(forged): %v", err)
	}
	if fp.UnverifiedIssuer() != "" {
		t.Errorf("UnverifiedIssuer of a non-string iss = %q", fp.UnverifiedIssuer())
	}
	if _, err := fp.Verify(testPolicy(), ks.trusted(), testNow); !errors.Is(err, domain.ErrInvalidToken) {
		t.Errorf("Verify(forged) = %v", err)
	}
	var zero *domain.ParsedToken
	if _, err := zero.Verify(testPolicy(), ks.trusted(), testNow); !errors.Is(err, domain.ErrInvalidToken) {
		t.Errorf("Verify on a nil ParsedToken = %v", err)
	}
}

func TestTokenPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := testPolicy().Validate(); err != nil {
		t.Fatalf("valid policy: %v", err)
	}
	zero := testPolicy()
	zero.MaxLifetime, zero.Skew, zero.MaxTokenBytes = 0, 0, 0 // no limit, no skew, the default size
	if err := zero.Validate(); err != nil {
		t.Errorf("a policy with zero lifetime, skew and size: %v", err)
	}
	err := domain.TokenPolicy{Skew: -time.Second, MaxTokenBytes: -1}.Validate()
	if !errors.Is(err, domain.ErrProfileInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	for _, want := range []string{"issuer", "audience", "email", "token_id", "skew", "max token bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
}

// TestVerifyTokenMalformedKeys: keys handed in by other code (a JWKS) may

func TestVerifyTokenRefusesDeepNesting(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	raw := build(t, ks.ed, tok{claims: func(c map[string]any) { c["deep"] = json.RawMessage(deep) }})
	_, err := domain.VerifyToken(raw, testPolicy(), ks.trusted(), testNow)
	if !errors.Is(err, domain.ErrInvalidToken) || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("VerifyToken = %v, want a nesting refusal", err)
	}
	shallow := strings.Repeat("[", 20) + strings.Repeat("]", 20)
	raw = build(t, ks.ed, tok{claims: func(c map[string]any) { c["deep"] = json.RawMessage(shallow) }})
	if _, err := domain.VerifyToken(raw, testPolicy(), ks.trusted(), testNow); err != nil {
		t.Fatalf("VerifyToken with 20 levels: %v", err)
	}
}
