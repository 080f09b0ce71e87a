package domain_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

const (
	sessionIss = "https://attest.example.com"
	sessionAud = "project-live-sessions"
)

func newSigningKey(t testing.TB, kid string) domain.SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return domain.SigningKey{KID: kid, Private: k}
}

func tokenKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

func newIssuer(t testing.TB) *domain.Issuer {
	t.Helper()
	return &domain.Issuer{TokenKey: tokenKey(1), Keys: []domain.SigningKey{newSigningKey(t, "k1")}, Iss: sessionIss, Aud: sessionAud}
}

func testSession() domain.Session {
	return domain.NewSession("session-1", "user-1", evidence("p-1", "tok-1", []string{"admin"}),
		map[string]any{"plan": "pro"}, testNow, 60)
}

func TestSessionToken(t *testing.T) {
	t.Parallel()
	a := &domain.Issuer{TokenKey: tokenKey(1)}
	b := &domain.Issuer{TokenKey: tokenKey(2)}
	tok := a.SessionToken("session-1").Reveal()

	if again := a.SessionToken("session-1").Reveal(); again != tok {
		t.Errorf("SessionToken is not deterministic: %q, then %q", tok, again)
	}
	if fleet := (&domain.Issuer{TokenKey: tokenKey(1)}).SessionToken("session-1").Reveal(); fleet != tok {
		t.Errorf("another issuer with the same key derives %q, want %q", fleet, tok)
	}
	if other := a.SessionToken("session-2").Reveal(); other == tok {
		t.Errorf("two sessions share the token %q", tok)
	}
	if other := b.SessionToken("session-1").Reveal(); other == tok {
		t.Errorf("two keys derive the same token %q", tok)
	}
	if other := a.SessionToken("").Reveal(); other == tok {
		t.Errorf("the empty id derives the same token")
	}

	body, ok := strings.CutPrefix(tok, domain.SessionTokenPrefix)
	if !ok {
		t.Fatalf("token %q does not start with %q", tok, domain.SessionTokenPrefix)
	}
	if len(body) < 43 {
		t.Errorf("token body has %d characters, want at least 43 (256 bits)", len(body))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		t.Fatalf("token body is not base64url: %v", err)
	}
	if len(raw)*8 < 256 {
		t.Errorf("token carries %d bits, want at least 256", len(raw)*8)
	}
	if a.SessionToken("session-1").String() != "REDACTED" {
		t.Errorf("a session token prints as %q", a.SessionToken("session-1").String())
	}
}

func TestTokenHash(t *testing.T) {
	t.Parallel()
	if got, want := domain.TokenHash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("TokenHash(abc) = %s, want %s", got, want)
	}
	if got := domain.TokenHash(""); len(got) != 64 || got == domain.TokenHash("abc") {
		t.Errorf("TokenHash(\"\") = %s", got)
	}
	tok := newIssuer(t).SessionToken("session-1").Reveal()
	if h := domain.TokenHash(tok); strings.Contains(h, tok) || h != domain.TokenHash(tok) || len(h) != 64 {
		t.Errorf("TokenHash(session token) = %s", h)
	}
}

func TestMintJWTParseJWTRoundTrip(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	s := testSession()
	at := testNow.Add(1500 * time.Millisecond)
	jwt, err := is.MintJWT(s, at)
	if err != nil {
		t.Fatalf("MintJWT: %v", err)
	}
	got, err := is.ParseJWT(jwt.Reveal(), testNow)
	if err != nil {
		t.Fatalf("ParseJWT: %v", err)
	}
	want := domain.SessionJWTClaims{SessionID: "session-1", UserID: "user-1", ExpiresAt: testNow.Add(time.Second + domain.SessionJWTLifetime)}
	if got != want {
		t.Errorf("ParseJWT = %+v, want %+v", got, want)
	}

	parts := strings.Split(jwt.Reveal(), ".")
	var hdr map[string]any
	var claims map[string]any
	if err := json.Unmarshal(mustB64(t, parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustB64(t, parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	if hdr["alg"] != "ES256" || hdr["kid"] != "k1" || hdr["typ"] != "JWT" {
		t.Errorf("header = %v", hdr)
	}
	iat := float64(testNow.Add(time.Second).Unix())
	if claims["iss"] != sessionIss || claims["aud"] != sessionAud || claims["sub"] != "user-1" ||
		claims["iat"] != iat || claims["nbf"] != iat || claims["exp"] != iat+domain.SessionJWTLifetime.Seconds() {
		t.Errorf("registered claims = %v", claims)
	}
	if claims["plan"] != "pro" {
		t.Errorf("custom claims are not at the top level: %v", claims)
	}
	ts, ok := claims[domain.SessionClaim].(map[string]any)
	if !ok || ts["session_id"] != "session-1" || ts["user_id"] != "user-1" {
		t.Errorf("%s = %v", domain.SessionClaim, claims[domain.SessionClaim])
	}
	if sig := mustB64(t, parts[2]); len(sig) != 64 {
		t.Errorf("signature is %d bytes, want 64 (raw r||s)", len(sig))
	}
}

// TestMintJWTKeepsRegisteredClaims: a custom claim cannot replace a claim
// the issuer sets, even if one slipped past ParseCustomClaims.
func TestMintJWTKeepsRegisteredClaims(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	s := testSession()
	s.CustomClaims = map[string]any{"iss": "https://evil.example", "sub": "user-admin", "exp": 9999999999}
	jwt, err := is.MintJWT(s, testNow)
	if err != nil {
		t.Fatal(err)
	}
	got, err := is.ParseJWT(jwt.Reveal(), testNow)
	if err != nil {
		t.Fatalf("ParseJWT: %v", err)
	}
	if got.UserID != "user-1" || !got.ExpiresAt.Equal(testNow.Add(domain.SessionJWTLifetime)) {
		t.Errorf("ParseJWT = %+v", got)
	}
}

func TestMintJWTWithoutKey(t *testing.T) {
	t.Parallel()
	is := &domain.Issuer{TokenKey: tokenKey(1), Iss: sessionIss, Aud: sessionAud}
	if jwt, err := is.MintJWT(testSession(), testNow); err == nil || !jwt.Empty() {
		t.Errorf("MintJWT without a key = %q, %v", jwt.Reveal(), err)
	}
}

func TestParseJWTRefuses(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	good, err := is.MintJWT(testSession(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good.Reveal(), ".")
	enc := func(v any) string { return b64([]byte(mustJSON(t, v))) }
	// signed makes a JWT with the given header and claims signed by k.
	signed := func(k domain.SigningKey, hdr, claims map[string]any) string {
		return rawToken(t, mustJSON(t, hdr), mustJSON(t, claims), func(in []byte) []byte { return sign(t, "ES256", k.Private, in) })
	}
	var claims map[string]any
	if err := json.Unmarshal(mustB64(t, parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	edited := func(k, v string) map[string]any {
		c := make(map[string]any, len(claims))
		for n, x := range claims {
			c[n] = x
		}
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	es256 := map[string]any{"alg": "ES256", "kid": "k1", "typ": "JWT"}
	other := newSigningKey(t, "k1") // another key under the same kid

	for _, tc := range []struct {
		name string
		raw  string
	}{
		{name: "empty", raw: ""},
		{name: "two parts", raw: parts[0] + "." + parts[1]},
		{name: "four parts", raw: good.Reveal() + ".x"},
		{name: "tampered payload", raw: parts[0] + "." + enc(edited("sub", "user-admin")) + "." + parts[2]},
		{name: "tampered session id", raw: parts[0] + "." + b64([]byte(strings.Replace(string(mustB64(t, parts[1])), "session-1", "session-2", 1))) + "." + parts[2]},
		{name: "tampered signature", raw: parts[0] + "." + parts[1] + "." + b64(append(mustB64(t, parts[2])[:63], mustB64(t, parts[2])[63]^1))},
		{name: "signature with padding", raw: parts[0] + "." + parts[1] + "." + parts[2] + "="},
		{name: "DER signature length", raw: parts[0] + "." + parts[1] + "." + b64(make([]byte, 70))},
		{name: "signed by another key under the same kid", raw: signed(other, es256, claims)},
		{name: "unknown kid", raw: signed(newSigningKey(t, "k9"), map[string]any{"alg": "ES256", "kid": "k9"}, claims)},
		{name: "no kid", raw: signed(is.Keys[0], map[string]any{"alg": "ES256"}, claims)},
		{name: "wrong iss", raw: signed(is.Keys[0], es256, edited("iss", "https://evil.example"))},
		{name: "missing iss", raw: signed(is.Keys[0], es256, edited("iss", ""))},
		{name: "wrong aud", raw: signed(is.Keys[0], es256, edited("aud", "another-project"))},
		{name: "missing session", raw: signed(is.Keys[0], es256, edited(domain.SessionClaim, ""))},
		{name: "alg none", raw: enc(map[string]any{"alg": "none", "kid": "k1"}) + "." + parts[1] + "."},
		{name: "alg none with the real signature", raw: enc(map[string]any{"alg": "none", "kid": "k1"}) + "." + parts[1] + "." + parts[2]},
		{name: "alg HS256", raw: enc(map[string]any{"alg": "HS256", "kid": "k1"}) + "." + parts[1] + "." + parts[2]},
		{name: "alg es256 in lower case", raw: signed(is.Keys[0], map[string]any{"alg": "es256", "kid": "k1"}, claims)},
		{name: "header not JSON", raw: b64([]byte("{")) + "." + parts[1] + "." + parts[2]},
		{name: "over 64 KiB", raw: parts[0] + "." + parts[1] + strings.Repeat("A", 64<<10) + "." + parts[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := is.ParseJWT(tc.raw, testNow)
			if !errors.Is(err, domain.ErrSessionNotFound) {
				t.Fatalf("ParseJWT = %+v, %v; want session_not_found", got, err)
			}
			if got != (domain.SessionJWTClaims{}) {
				t.Errorf("ParseJWT returned claims %+v with its error", got)
			}
		})
	}
}

// TestParseJWTAcrossKeyRotation: with fixed keys (no times) Keys[0] signs
// and every key verifies, so a JWT minted before a rotation still parses.
func TestParseJWTAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	old := newIssuer(t)
	jwt, err := old.MintJWT(testSession(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	rotated := &domain.Issuer{TokenKey: old.TokenKey, Keys: []domain.SigningKey{newSigningKey(t, "k2"), old.Keys[0]}, Iss: sessionIss, Aud: sessionAud}
	if _, err := rotated.ParseJWT(jwt.Reveal(), testNow); err != nil {
		t.Errorf("ParseJWT after rotation: %v", err)
	}
	dropped := &domain.Issuer{TokenKey: old.TokenKey, Keys: rotated.Keys[:1], Iss: sessionIss, Aud: sessionAud}
	if _, err := dropped.ParseJWT(jwt.Reveal(), testNow); !errors.Is(err, domain.ErrSessionNotFound) {
		t.Errorf("ParseJWT after the old key was dropped = %v", err)
	}
	fresh, err := rotated.MintJWT(testSession(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ParseJWT(fresh.Reveal(), testNow); !errors.Is(err, domain.ErrSessionNotFound) {
		t.Errorf("an issuer without the new key parsed its JWT: %v", err)
	}
}

func TestPublicJWKS(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	set := is.PublicJWKS(testNow)
	if len(set.Keys) != 1 {
		t.Fatalf("PublicJWKS has %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.Kty != "EC" || k.Crv != "P-256" || k.Kid != "k1" || k.Alg != "ES256" || k.Use != "sig" {
		t.Errorf("key = %+v", k)
	}
	x, y := mustB64(t, k.X), mustB64(t, k.Y)
	if len(x) != 32 || len(y) != 32 {
		t.Fatalf("coordinates are %d and %d bytes, want 32", len(x), len(y))
	}
	pub := &is.Keys[0].Private.PublicKey
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(point[1:33]) != string(x) || string(point[33:]) != string(y) {
		t.Errorf("the JWK is not the signing key's public half")
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, hasD := raw.Keys[0]["d"]; hasD || len(raw.Keys[0]) != 7 {
		t.Errorf("JWKS = %s, want exactly kty crv x y kid alg use", b)
	}

	// The published key verifies a minted JWT.
	jwt, err := is.MintJWT(testSession(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt.Reveal(), ".")
	sig := mustB64(t, parts[2])
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	verifier, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatalf("the JWK is not a P-256 point: %v", err)
	}
	if !ecdsa.Verify(verifier, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Errorf("the JWKS key does not verify a session JWT")
	}

	empty, err := json.Marshal((&domain.Issuer{}).PublicJWKS(testNow))
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Errorf("JWKS of an issuer without keys = %s, %v; want {\"keys\":[]}", empty, err)
	}
}
