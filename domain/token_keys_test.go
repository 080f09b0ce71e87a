package domain_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// TestVerifyTokenNeverFetchesKeyURLs sends jku and x5u pointing at a live
// server: a token of the trusted key verifies, one of the attacker's key
// fails, and the server is never asked for anything.
func TestVerifyTokenNeverFetchesKeyURLs(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		pub := ks.attackerRSA.priv.Public().(*rsa.PublicKey)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "kid": ks.attackerRSA.pub.KID, "n": b64(pub.N.Bytes()), "e": "AQAB",
		}}})
	}))
	t.Cleanup(srv.Close)
	urls := map[string]any{"jku": srv.URL + "/jwks.json", "x5u": srv.URL + "/cert.pem"}

	for _, tc := range []struct {
		name    string
		s       signer
		kid     string
		wantErr error
	}{
		{name: "trusted key with key URLs verifies", s: ks.rsa},
		{name: "attacker key under the trusted kid fails", s: ks.attackerRSA, kid: ks.rsa.pub.KID, wantErr: domain.ErrInvalidToken},
		{name: "attacker key under its own kid fails", s: ks.attackerRSA, wantErr: domain.ErrUnknownKID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := build(t, tc.s, tok{kid: tc.kid, header: urls})
			_, err := domain.VerifyToken(raw, testPolicy(), ks.trusted(), testNow)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("VerifyToken: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("VerifyToken error = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the key URLs were fetched %d times", n)
	}
}

func TestVerifyTokenMalformedKeys(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	raw := build(t, ks.p256, tok{noKID: true})
	rsaRaw := build(t, ks.rsa, tok{noKID: true})
	edRaw := build(t, ks.ed, tok{noKID: true})
	for _, tc := range []struct {
		name string
		raw  string
		key  domain.PublicKey
	}{
		{"EC key without coordinates", raw, domain.PublicKey{Algs: []string{"ES256"}, Key: &ecdsa.PublicKey{Curve: elliptic.P256()}}},
		{"nil EC key", raw, domain.PublicKey{Algs: []string{"ES256"}, Key: (*ecdsa.PublicKey)(nil)}},
		{"P-384 key claiming ES256", raw, domain.PublicKey{Algs: []string{"ES256"}, Key: ks.p384.priv.Public()}},
		{"RSA key claiming ES256", raw, domain.PublicKey{Algs: []string{"ES256"}, Key: ks.rsa.priv.Public()}},
		{"RSA key without modulus", rsaRaw, domain.PublicKey{Algs: []string{"RS256"}, Key: &rsa.PublicKey{E: 65537}}},
		{"short Ed25519 key", edRaw, domain.PublicKey{Algs: []string{"EdDSA"}, Key: ed25519.PublicKey{1, 2, 3}}},
		{"nil key", edRaw, domain.PublicKey{Algs: []string{"EdDSA"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := domain.VerifyToken(tc.raw, testPolicy(), []domain.PublicKey{tc.key}, testNow); !errors.Is(err, domain.ErrInvalidToken) {
				t.Fatalf("VerifyToken = %v, want ErrInvalidToken", err)
			}
		})
	}
}
