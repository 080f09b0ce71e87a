package domain_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// testNow is the fixed clock of every token test.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	testIssuer   = "https://issuer.example.com"
	testAudience = "project-live-attest"
)

func testPolicy() domain.TokenPolicy {
	return domain.TokenPolicy{
		Issuer:      testIssuer,
		Audience:    testAudience,
		Mapping:     domain.AttributeMapping{Email: "email", TokenID: "jti"},
		MaxLifetime: time.Hour,
		Skew:        60 * time.Second,
	}
}

// signer is a private key with the JWS algorithm it signs and the trusted
// (or attacker) public key that goes with it.
type signer struct {
	alg  string
	priv crypto.Signer
	pub  domain.PublicKey
}

// keyset holds real keys made for one test.
type keyset struct {
	rsa, p256, p384, p521, ed, ed2 signer
	attackerRSA, attackerEd        signer
}

func newKeyset(t testing.TB) *keyset {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	attackerRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ed := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mk := func(alg string, priv crypto.Signer) signer {
		return signer{alg: alg, priv: priv, pub: pemKey(t, priv.Public())}
	}
	return &keyset{
		rsa:         mk("RS256", rsaKey),
		p256:        mk("ES256", ec(elliptic.P256())),
		p384:        mk("ES384", ec(elliptic.P384())),
		p521:        mk("ES512", ec(elliptic.P521())),
		ed:          mk("EdDSA", ed()),
		ed2:         mk("EdDSA", ed()),
		attackerRSA: mk("RS256", attackerRSA),
		attackerEd:  mk("EdDSA", ed()),
	}
}

// trusted is the profile's key list: every trusted key, none of the
// attacker's.
func (ks *keyset) trusted() []domain.PublicKey {
	return []domain.PublicKey{ks.rsa.pub, ks.p256.pub, ks.p384.pub, ks.p521.pub, ks.ed.pub, ks.ed2.pub}
}

// pemKey turns a public key into a profile key the way a profile does:
// through PKIX PEM and ParsePEMPublicKey.
func pemKey(t testing.TB, pub crypto.PublicKey) domain.PublicKey {
	t.Helper()
	return mustParsePEM(t, pemOf(t, pub))
}

func pemOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func mustParsePEM(t testing.TB, text string) domain.PublicKey {
	t.Helper()
	k, err := domain.ParsePEMPublicKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sign produces a JWS signature of input with alg. It signs whatever alg
// says with whatever key it is given, as an attacker would.
func sign(t testing.TB, alg string, priv any, input []byte) []byte {
	t.Helper()
	hashed := func(h crypto.Hash) []byte {
		switch h {
		case crypto.SHA384:
			d := sha512.Sum384(input)
			return d[:]
		case crypto.SHA512:
			d := sha512.Sum512(input)
			return d[:]
		}
		d := sha256.Sum256(input)
		return d[:]
	}
	hashOf := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	switch {
	case alg == "EdDSA":
		return ed25519.Sign(priv.(ed25519.PrivateKey), input)
	case strings.HasPrefix(alg, "HS"):
		mac := hmac.New(sha256.New, priv.([]byte))
		mac.Write(input)
		return mac.Sum(nil)
	case strings.HasPrefix(alg, "RS"):
		h := hashOf[alg[2:]]
		sig, err := rsa.SignPKCS1v15(nil, priv.(*rsa.PrivateKey), h, hashed(h))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case strings.HasPrefix(alg, "PS"):
		h := hashOf[alg[2:]]
		sig, err := rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), h, hashed(h), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case strings.HasPrefix(alg, "ES"):
		k := priv.(*ecdsa.PrivateKey)
		r, s, err := ecdsa.Sign(rand.Reader, k, hashed(hashOf[alg[2:]]))
		if err != nil {
			t.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
	t.Fatalf("sign: no signer for %s", alg)
	return nil
}

// goodClaims is a claim set every rule accepts at testNow.
func goodClaims() map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "user-123",
		"email": "ada@example.com",
		"jti":   "tok-1",
		"iat":   testNow.Add(-10 * time.Second).Unix(),
		"nbf":   testNow.Add(-10 * time.Second).Unix(),
		"exp":   testNow.Add(5 * time.Minute).Unix(),
	}
}

// tok describes a token to build: the header (alg from the signer unless
// set, kid of the signer's key unless noKID), claim edits and signature
// edits.
type tok struct {
	alg     string
	noKID   bool
	kid     string
	header  map[string]any
	claims  func(c map[string]any)
	sigWith any // the key the signature is made with; default the signer's
	sigEdit func(sig []byte) []byte
	rawSig  func(input []byte) []byte // replaces the signing altogether
}

// build signs a token with s as tk describes.
func build(t testing.TB, s signer, tk tok) string {
	t.Helper()
	h := map[string]any{"typ": "JWT", "alg": s.alg}
	if tk.alg != "" {
		h["alg"] = tk.alg
	}
	if !tk.noKID {
		h["kid"] = s.pub.KID
	}
	if tk.kid != "" {
		h["kid"] = tk.kid
	}
	for k, v := range tk.header {
		if v == nil {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	c := goodClaims()
	if tk.claims != nil {
		tk.claims(c)
	}
	return rawToken(t, mustJSON(t, h), mustJSON(t, c), func(input []byte) []byte {
		if tk.rawSig != nil {
			return tk.rawSig(input)
		}
		var key any = s.priv
		if tk.sigWith != nil {
			key = tk.sigWith
		}
		sig := sign(t, h["alg"].(string), key, input)
		if tk.sigEdit != nil {
			sig = tk.sigEdit(sig)
		}
		return sig
	})
}

// rawToken assembles a compact JWS from literal header and payload JSON, so
// tests can send JSON that encoding/json would never produce.
func rawToken(t testing.TB, header, payload string, signFn func([]byte) []byte) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	var sig []byte
	if signFn != nil {
		sig = signFn([]byte(input))
	}
	return input + "." + b64(sig)
}

// segments splits a compact token for surgery.
func segments(raw string) []string { return strings.Split(raw, ".") }

type verifyCase struct {
	name    string
	raw     func(t *testing.T, ks *keyset) string
	keys    func(ks *keyset) []domain.PublicKey // default: ks.trusted()
	policy  func(p *domain.TokenPolicy)
	wantErr error  // nil: accepted
	wantMsg string // substring of the error message, to pin the rule that fired
	check   func(t *testing.T, ks *keyset, vt *domain.VerifiedToken)
}

func runVerifyCases(t *testing.T, cases []verifyCase) {
	t.Helper()
	ks := newKeyset(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := tc.raw(t, ks)
			keys := ks.trusted()
			if tc.keys != nil {
				keys = tc.keys(ks)
			}
			pol := testPolicy()
			if tc.policy != nil {
				tc.policy(&pol)
			}
			vt, err := domain.VerifyToken(raw, pol, keys, testNow)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				if tc.check != nil {
					tc.check(t, ks, vt)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyToken accepted the token, want %v", tc.wantErr)
			}
			if vt != nil {
				t.Errorf("VerifyToken returned a token with error %v", err)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("VerifyToken error = %v, want %v", err, tc.wantErr)
			}
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *domain.Error", err)
			}
			if tc.wantMsg != "" && !strings.Contains(de.Message, tc.wantMsg) {
				t.Errorf("message = %q, want it to mention %q", de.Message, tc.wantMsg)
			}
			if len(raw) > 8 && strings.Contains(err.Error(), raw) {
				t.Errorf("the error carries the raw token")
			}
		})
	}
}

// withClaims builds a token signed by the trusted Ed25519 key with edited
// claims.
func withClaims(edit func(c map[string]any)) func(t *testing.T, ks *keyset) string {
	return func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{claims: edit}) }
}

func TestVerifyTokenRefusesAttacks(t *testing.T) {
	t.Parallel()
	hdr := func(alg string) string { return `{"alg":"` + alg + `","typ":"JWT"}` }
	payload := func(t *testing.T) string { return mustJSON(t, goodClaims()) }

	cases := []verifyCase{
		// Size and serialization.
		{
			name: "oversize token", wantErr: domain.ErrInvalidToken, wantMsg: "larger than",
			raw: withClaims(func(c map[string]any) { c["pad"] = strings.Repeat("x", domain.DefaultMaxTokenBytes) }),
		},
		{
			name: "oversize for a policy with a smaller cap", wantErr: domain.ErrInvalidToken, wantMsg: "larger than 256 bytes",
			raw:    withClaims(nil),
			policy: func(p *domain.TokenPolicy) { p.MaxTokenBytes = 256 },
		},
		{
			name: "JSON serialization", wantErr: domain.ErrInvalidToken, wantMsg: "JSON serialization",
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return mustJSON(t, map[string]any{"protected": s[0], "payload": s[1], "signature": s[2]})
			},
		},
		{
			name: "JWE with five parts", wantErr: domain.ErrInvalidToken, wantMsg: "JWE",
			raw: func(t *testing.T, ks *keyset) string {
				return b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + ".a2V5.aXY.Y2lwaGVy.dGFn"
			},
		},
		{
			name: "two parts", wantErr: domain.ErrInvalidToken, wantMsg: "3 are required",
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return s[0] + "." + s[1]
			},
		},
		{
			name: "empty token", wantErr: domain.ErrInvalidToken, wantMsg: "empty",
			raw: func(t *testing.T, ks *keyset) string { return "" },
		},
		// Base64url.
		{
			name: "base64 padding", wantErr: domain.ErrInvalidToken, wantMsg: "padding",
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return s[0] + "." + s[1] + "." + base64.URLEncoding.EncodeToString(mustB64(t, s[2]))
			},
		},
		{
			name: "standard base64 characters", wantErr: domain.ErrInvalidToken, wantMsg: "standard base64",
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return s[0] + "." + base64.RawStdEncoding.EncodeToString(append(mustB64(t, s[1]), 0xfb, 0xff)) + "." + s[2]
			},
		},
		{
			name: "whitespace inside", wantErr: domain.ErrInvalidToken, wantMsg: "whitespace",
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return s[0] + "." + s[1][:10] + "\n" + s[1][10:] + "." + s[2]
			},
		},
		{
			name: "trailing newline", wantErr: domain.ErrInvalidToken, wantMsg: "whitespace",
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{}) + "\n" },
		},
		{
			name: "non-zero trailing bits", wantErr: domain.ErrInvalidToken, wantMsg: "not valid base64url",
			raw: func(t *testing.T, ks *keyset) string {
				// A 64-byte Ed25519 signature is 86 characters with 4 unused
				// bits in the last one; "B" (index 1) sets one of them, so
				// this is a second spelling a lenient decoder would accept.
				s := segments(build(t, ks.ed, tok{}))
				sig := []byte(s[2])
				sig[len(sig)-1] = 'B'
				return s[0] + "." + s[1] + "." + string(sig)
			},
		},
		// Strict JSON.
		{
			name: "duplicate header key", wantErr: domain.ErrInvalidToken, wantMsg: "header is not a strict JSON object: duplicate member",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":"EdDSA","kid":"`+ks.ed.pub.KID+`","kid":"other"}`, payload(t),
					func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "duplicate header key spelled with an escape", wantErr: domain.ErrInvalidToken, wantMsg: "header is not a strict JSON object: duplicate member",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":"EdDSA","\u0061lg":"none"}`, payload(t),
					func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "header is an array", wantErr: domain.ErrInvalidToken, wantMsg: "header is not a strict JSON object: not a JSON object",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `[{"alg":"EdDSA"}]`, payload(t), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "header with trailing data", wantErr: domain.ErrInvalidToken, wantMsg: "header is not a strict JSON object: data after",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":"EdDSA"}{"alg":"none"}`, payload(t), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "duplicate payload key", wantErr: domain.ErrInvalidToken, wantMsg: "payload is not a strict JSON object: duplicate member",
			raw: func(t *testing.T, ks *keyset) string {
				p := strings.TrimSuffix(payload(t), "}") + `,"email":"eve@evil.example"}`
				return rawToken(t, hdr("EdDSA"), p, func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "duplicate key in a nested payload object", wantErr: domain.ErrInvalidToken, wantMsg: "payload is not a strict JSON object: duplicate member",
			raw: func(t *testing.T, ks *keyset) string {
				p := strings.TrimSuffix(payload(t), "}") + `,"ext":{"a":1,"a":2}}`
				return rawToken(t, hdr("EdDSA"), p, func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "payload not valid UTF-8", wantErr: domain.ErrInvalidToken, wantMsg: "payload is not a strict JSON object: not valid UTF-8",
			raw: func(t *testing.T, ks *keyset) string {
				p := strings.TrimSuffix(payload(t), "}") + ",\"name\":\"\xff\"}"
				return rawToken(t, hdr("EdDSA"), p, func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "payload is a string", wantErr: domain.ErrInvalidToken, wantMsg: "payload is not a strict JSON object: not a JSON object",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, hdr("EdDSA"), `"hello"`, func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		// Algorithm.
		{
			name: "alg none", wantErr: domain.ErrInvalidToken, wantMsg: "alg none",
			raw: func(t *testing.T, ks *keyset) string { return rawToken(t, hdr("none"), payload(t), nil) },
		},
		{
			name: "alg None", wantErr: domain.ErrInvalidToken, wantMsg: "alg none",
			raw: func(t *testing.T, ks *keyset) string { return rawToken(t, hdr("None"), payload(t), nil) },
		},
		{
			name: "alg NONE with a signature", wantErr: domain.ErrInvalidToken, wantMsg: "alg none",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, hdr("NONE"), payload(t), func(in []byte) []byte { return []byte("sig") })
			},
		},
		{
			name: "missing alg", wantErr: domain.ErrInvalidToken, wantMsg: "no alg",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"typ":"JWT"}`, payload(t), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "alg not a string", wantErr: domain.ErrInvalidToken, wantMsg: "alg is not a string",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":["EdDSA"]}`, payload(t), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "HS256 signed with the PEM of the trusted RSA key", wantErr: domain.ErrInvalidToken, wantMsg: "HMAC",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.rsa, tok{alg: "HS256", sigWith: []byte(pemOf(t, ks.rsa.priv.Public()))})
			},
		},
		{
			name: "HS256 signed with the DER of the trusted EC key, no kid", wantErr: domain.ErrInvalidToken, wantMsg: "HMAC",
			raw: func(t *testing.T, ks *keyset) string {
				der, err := x509.MarshalPKIXPublicKey(ks.p256.priv.Public())
				if err != nil {
					t.Fatal(err)
				}
				return build(t, ks.p256, tok{alg: "HS256", noKID: true, sigWith: der})
			},
		},
		{
			name: "RS256 header naming an EC key", wantErr: domain.ErrInvalidToken, wantMsg: "does not allow the algorithm RS256",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.rsa, tok{kid: ks.p256.pub.KID})
			},
		},
		{
			name: "RS256 without kid when only EC keys are trusted", wantErr: domain.ErrInvalidToken, wantMsg: "no trusted key allows",
			raw:  func(t *testing.T, ks *keyset) string { return build(t, ks.rsa, tok{noKID: true}) },
			keys: func(ks *keyset) []domain.PublicKey { return []domain.PublicKey{ks.p256.pub, ks.p384.pub} },
		},
		{
			name: "ES384 header naming a P-256 key", wantErr: domain.ErrInvalidToken, wantMsg: "does not allow the algorithm ES384",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.p384, tok{kid: ks.p256.pub.KID})
			},
		},
		{
			name: "EdDSA header naming an RSA key", wantErr: domain.ErrInvalidToken, wantMsg: "does not allow the algorithm EdDSA",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{kid: ks.rsa.pub.KID})
			},
		},
		{
			name: "unknown alg ES256K", wantErr: domain.ErrInvalidToken, wantMsg: "not supported",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.p256, tok{alg: "ES256K", rawSig: func(in []byte) []byte { return sign(t, "ES256", ks.p256.priv, in) }})
			},
		},
		{
			name: "alg in the wrong case", wantErr: domain.ErrInvalidToken, wantMsg: "not supported",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, hdr("rs256"), payload(t), func(in []byte) []byte { return sign(t, "RS256", ks.rsa.priv, in) })
			},
		},
		{
			name: "alg Ed448", wantErr: domain.ErrInvalidToken, wantMsg: "not supported",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, hdr("Ed448"), payload(t), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		// Header members.
		{
			name: "crit non-empty", wantErr: domain.ErrInvalidToken, wantMsg: "crit",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"crit": []string{"exp"}, "exp": 1}})
			},
		},
		{
			name: "crit not an array", wantErr: domain.ErrInvalidToken, wantMsg: "crit",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"crit": "b64"}})
			},
		},
		{
			name: "b64 false with crit b64", wantErr: domain.ErrInvalidToken, wantMsg: "crit",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"b64": false, "crit": []string{"b64"}}})
			},
		},
		{
			name: "b64 false without crit", wantErr: domain.ErrInvalidToken, wantMsg: "b64",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"b64": false}})
			},
		},
		{
			name: "cty JWT", wantErr: domain.ErrInvalidToken, wantMsg: "nested",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"cty": "JWT"}})
			},
		},
		{
			name: "cty jwt lower case", wantErr: domain.ErrInvalidToken, wantMsg: "nested",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"cty": "jwt"}})
			},
		},
		{
			name: "kid not a string", wantErr: domain.ErrInvalidToken, wantMsg: "kid is not a string",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{noKID: true, header: map[string]any{"kid": 7}})
			},
		},
		// Keys named or embedded by the token.
		{
			name: "embedded jwk of the attacker's key", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				pub := ks.attackerEd.priv.Public().(ed25519.PublicKey)
				return build(t, ks.attackerEd, tok{noKID: true, header: map[string]any{
					"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(pub)},
				}})
			},
		},
		{
			name: "embedded jwk and kid of the attacker's key", wantErr: domain.ErrUnknownKID,
			raw: func(t *testing.T, ks *keyset) string {
				pub := ks.attackerEd.priv.Public().(ed25519.PublicKey)
				return build(t, ks.attackerEd, tok{header: map[string]any{
					"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(pub), "kid": ks.attackerEd.pub.KID},
				}})
			},
		},
		{
			name: "x5c of the attacker's key", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				der, err := x509.MarshalPKIXPublicKey(ks.attackerRSA.priv.Public())
				if err != nil {
					t.Fatal(err)
				}
				return build(t, ks.attackerRSA, tok{noKID: true, header: map[string]any{
					"x5c": []string{base64.StdEncoding.EncodeToString(der)},
				}})
			},
		},
		{
			name: "attacker's signature under the trusted kid", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.rsa, tok{sigWith: ks.attackerRSA.priv})
			},
		},
		{
			name: "unknown kid", wantErr: domain.ErrUnknownKID,
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{kid: "rotated-key-2031"}) },
		},
		{
			name: "unknown kid is also invalid_trusted_auth_token", wantErr: domain.ErrInvalidToken, wantMsg: "kid names no trusted key",
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{kid: "rotated-key-2031"}) },
		},
		{
			name: "no keys at all", wantErr: domain.ErrInvalidToken, wantMsg: "no trusted key allows",
			raw:  func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{noKID: true}) },
			keys: func(ks *keyset) []domain.PublicKey { return nil },
		},
		// Signature.
		{
			name: "bad signature", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.rsa, tok{sigEdit: func(s []byte) []byte { s[10] ^= 1; return s }})
			},
		},
		{
			name: "payload changed after signing", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.p256, tok{}))
				c := goodClaims()
				c["email"] = "eve@evil.example"
				return s[0] + "." + b64([]byte(mustJSON(t, c))) + "." + s[2]
			},
		},
		{
			name: "truncated RSA signature", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.rsa, tok{sigEdit: func(s []byte) []byte { return s[:len(s)-1] }})
			},
		},
		{
			name: "truncated ECDSA signature", wantErr: domain.ErrInvalidToken, wantMsg: "must be 64 bytes",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.p256, tok{sigEdit: func(s []byte) []byte { return s[:len(s)-1] }})
			},
		},
		{
			name: "truncated EdDSA signature", wantErr: domain.ErrInvalidToken, wantMsg: "must be 64 bytes",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{sigEdit: func(s []byte) []byte { return s[:len(s)-1] }})
			},
		},
		{
			name: "ECDSA DER signature", wantErr: domain.ErrInvalidToken, wantMsg: "raw r||s",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.p256, tok{rawSig: func(in []byte) []byte {
					d := sha256.Sum256(in)
					der, err := ecdsa.SignASN1(rand.Reader, ks.p256.priv.(*ecdsa.PrivateKey), d[:])
					if err != nil {
						t.Fatal(err)
					}
					return der
				}})
			},
		},
		{
			name: "PSS signature under an RS256 header", wantErr: domain.ErrInvalidToken, wantMsg: "does not verify",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.rsa, tok{rawSig: func(in []byte) []byte { return sign(t, "PS256", ks.rsa.priv, in) }})
			},
		},
		{
			name: "empty signature", wantErr: domain.ErrInvalidToken, wantMsg: "no signature",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{sigEdit: func([]byte) []byte { return nil }})
			},
		},
		// Issuer.
		{
			name: "wrong iss", wantErr: domain.ErrInvalidIssuer,
			raw: withClaims(func(c map[string]any) { c["iss"] = "https://evil.example.com" }),
		},
		{
			name: "iss with a trailing slash", wantErr: domain.ErrInvalidIssuer,
			raw: withClaims(func(c map[string]any) { c["iss"] = testIssuer + "/" }),
		},
		{
			name: "missing iss", wantErr: domain.ErrInvalidIssuer,
			raw: withClaims(func(c map[string]any) { delete(c, "iss") }),
		},
		{
			name: "iss not a string", wantErr: domain.ErrInvalidIssuer,
			raw: withClaims(func(c map[string]any) { c["iss"] = []string{testIssuer} }),
		},
		// Audience.
		{
			name: "aud mismatch", wantErr: domain.ErrInvalidAudience,
			raw: withClaims(func(c map[string]any) { c["aud"] = "another-project" }),
		},
		{
			name: "aud array without the audience", wantErr: domain.ErrInvalidAudience,
			raw: withClaims(func(c map[string]any) { c["aud"] = []string{"a", "b"} }),
		},
		{
			name: "aud wrong type", wantErr: domain.ErrInvalidAudience,
			raw: withClaims(func(c map[string]any) { c["aud"] = 42 }),
		},
		{
			name: "aud array with a non-string", wantErr: domain.ErrInvalidAudience,
			raw: withClaims(func(c map[string]any) { c["aud"] = []any{testAudience, 1} }),
		},
		{
			name: "aud object", wantErr: domain.ErrInvalidAudience,
			raw: withClaims(func(c map[string]any) { c["aud"] = map[string]any{"aud": testAudience} }),
		},
		{
			name: "missing aud", wantErr: domain.ErrInvalidAudience,
			raw: withClaims(func(c map[string]any) { delete(c, "aud") }),
		},
		// Times.
		{
			name: "missing exp", wantErr: domain.ErrInvalidClaims, wantMsg: "no exp",
			raw: withClaims(func(c map[string]any) { delete(c, "exp") }),
		},
		{
			name: "exp null", wantErr: domain.ErrInvalidClaims, wantMsg: "no exp",
			raw: withClaims(func(c map[string]any) { c["exp"] = nil }),
		},
		{
			name: "exp string", wantErr: domain.ErrInvalidClaims, wantMsg: "exp is not a number",
			raw: withClaims(func(c map[string]any) { c["exp"] = testNow.Add(time.Minute).Format(time.RFC3339) }),
		},
		{
			name: "exp numeric string", wantErr: domain.ErrInvalidClaims, wantMsg: "exp is not a number",
			raw: withClaims(func(c map[string]any) { c["exp"] = "1893553445" }),
		},
		{
			name: "exp beyond year 9999", wantErr: domain.ErrInvalidClaims, wantMsg: "exp is not a date",
			raw: withClaims(func(c map[string]any) { c["exp"] = json.Number("1e300") }),
		},
		{
			name: "exp negative", wantErr: domain.ErrInvalidClaims, wantMsg: "exp is not a date",
			raw: withClaims(func(c map[string]any) { c["exp"] = -1 }),
		},
		{
			name: "expired beyond skew", wantErr: domain.ErrExpired,
			raw: withClaims(func(c map[string]any) { c["exp"] = testNow.Add(-61 * time.Second).Unix() }),
		},
		{
			name: "expired by a fraction of a second beyond skew", wantErr: domain.ErrExpired,
			raw: withClaims(func(c map[string]any) {
				c["exp"] = json.Number(fmt.Sprintf("%d.9", testNow.Add(-61*time.Second).Unix()))
			}),
		},
		{
			name: "nbf in the future beyond skew", wantErr: domain.ErrNotYetValid,
			raw: withClaims(func(c map[string]any) { c["nbf"] = testNow.Add(61 * time.Second).Unix() }),
		},
		{
			name: "nbf not a number", wantErr: domain.ErrInvalidClaims, wantMsg: "nbf is not a number",
			raw: withClaims(func(c map[string]any) { c["nbf"] = "yesterday" }),
		},
		{
			name: "iat in the future", wantErr: domain.ErrNotYetValid,
			raw: withClaims(func(c map[string]any) {
				c["iat"] = testNow.Add(61 * time.Second).Unix()
				c["exp"] = testNow.Add(10 * time.Minute).Unix()
			}),
		},
		{
			name: "iat not a number", wantErr: domain.ErrInvalidClaims, wantMsg: "iat is not a number",
			raw: withClaims(func(c map[string]any) { c["iat"] = true }),
		},
		{
			name: "max lifetime exceeded", wantErr: domain.ErrInvalidClaims, wantMsg: "lives longer",
			raw: withClaims(func(c map[string]any) {
				iat := testNow.Add(-10 * time.Second)
				c["iat"] = iat.Unix()
				c["exp"] = iat.Add(time.Hour + time.Second).Unix()
			}),
		},
		{
			name: "max lifetime exceeded without iat", wantErr: domain.ErrInvalidClaims, wantMsg: "lives longer",
			raw: withClaims(func(c map[string]any) {
				delete(c, "iat")
				c["exp"] = testNow.Add(time.Hour + time.Second).Unix()
			}),
		},
		{
			name: "sub not a string", wantErr: domain.ErrInvalidClaims, wantMsg: "sub",
			raw: withClaims(func(c map[string]any) { c["sub"] = 123 }),
		},
		// Mapped claims.
		{
			name: "missing email", wantErr: domain.ErrInvalidClaims, wantMsg: "no email",
			raw: withClaims(func(c map[string]any) { delete(c, "email") }),
		},
		{
			name: "email not a string", wantErr: domain.ErrInvalidClaims, wantMsg: "email claim is not a string",
			raw: withClaims(func(c map[string]any) { c["email"] = []string{"ada@example.com"} }),
		},
		{
			name: "email empty", wantErr: domain.ErrInvalidClaims, wantMsg: "email claim is empty",
			raw: withClaims(func(c map[string]any) { c["email"] = "" }),
		},
		{
			name: "email invalid", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "not-an-email" }),
		},
		{
			name: "email with a display name", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "Ada <ada@example.com>" }),
		},
		{
			name: "email in angle brackets", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "<ada@example.com>" }),
		},
		{
			name: "two emails", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "ada@example.com, eve@evil.example" }),
		},
		{
			name: "email too long", wantErr: domain.ErrInvalidClaims, wantMsg: "longer than 254",
			raw: withClaims(func(c map[string]any) { c["email"] = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".com" }),
		},
		{
			name: "missing token id", wantErr: domain.ErrInvalidClaims, wantMsg: "no token id",
			raw: withClaims(func(c map[string]any) { delete(c, "jti") }),
		},
		{
			name: "token id not a string", wantErr: domain.ErrInvalidClaims, wantMsg: "token id claim is not a string",
			raw: withClaims(func(c map[string]any) { c["jti"] = 17 }),
		},
		{
			name: "token id too long", wantErr: domain.ErrInvalidClaims, wantMsg: "longer than 256",
			raw: withClaims(func(c map[string]any) { c["jti"] = strings.Repeat("t", 257) }),
		},
		{
			name: "role_ids not an array", wantErr: domain.ErrInvalidClaims, wantMsg: "role ids",
			raw:    withClaims(func(c map[string]any) { c["roles"] = "admin" }),
			policy: func(p *domain.TokenPolicy) { p.Mapping.RoleIDs = "roles" },
		},
		{
			name: "role_ids array with a number", wantErr: domain.ErrInvalidClaims, wantMsg: "role ids",
			raw:    withClaims(func(c map[string]any) { c["roles"] = []any{"admin", 1} }),
			policy: func(p *domain.TokenPolicy) { p.Mapping.RoleIDs = "roles" },
		},
		{
			name: "external user id not a string", wantErr: domain.ErrInvalidClaims, wantMsg: "external user id",
			raw:    withClaims(func(c map[string]any) { c["uid"] = 99 }),
			policy: func(p *domain.TokenPolicy) { p.Mapping.ExternalUserID = "uid" },
		},
		// The policy itself.
		{
			name: "policy without an audience", wantErr: domain.ErrInternal,
			raw:    withClaims(nil),
			policy: func(p *domain.TokenPolicy) { p.Audience = "" },
		},
		{
			name: "policy without a token id mapping", wantErr: domain.ErrInternal,
			raw:    withClaims(nil),
			policy: func(p *domain.TokenPolicy) { p.Mapping.TokenID = "" },
		},
	}
	runVerifyCases(t, cases)
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyTokenAccepts(t *testing.T) {
	t.Parallel()
	algCase := func(name string, s func(ks *keyset) signer, alg string) verifyCase {
		return verifyCase{
			name: name,
			raw:  func(t *testing.T, ks *keyset) string { return build(t, s(ks), tok{alg: alg}) },
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				want := s(ks)
				if vt.Alg != alg || vt.KID != want.pub.KID {
					t.Errorf("Alg, KID = %s, %s; want %s, %s", vt.Alg, vt.KID, alg, want.pub.KID)
				}
				if !want.pub.Allows(vt.Alg) {
					t.Errorf("verified with a key that does not allow %s", vt.Alg)
				}
			},
		}
	}
	rsaKey := func(ks *keyset) signer { return ks.rsa }
	cases := []verifyCase{
		algCase("RS256", rsaKey, "RS256"),
		algCase("RS384", rsaKey, "RS384"),
		algCase("RS512", rsaKey, "RS512"),
		algCase("PS256", rsaKey, "PS256"),
		algCase("PS384", rsaKey, "PS384"),
		algCase("PS512", rsaKey, "PS512"),
		algCase("ES256", func(ks *keyset) signer { return ks.p256 }, "ES256"),
		algCase("ES384", func(ks *keyset) signer { return ks.p384 }, "ES384"),
		algCase("ES512", func(ks *keyset) signer { return ks.p521 }, "ES512"),
		algCase("EdDSA", func(ks *keyset) signer { return ks.ed }, "EdDSA"),
		{
			name: "every attribute pulled out",
			raw:  withClaims(nil),
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				want := domain.VerifiedToken{
					Alg: "EdDSA", KID: ks.ed.pub.KID, Issuer: testIssuer, Subject: "user-123",
					Email: "ada@example.com", TokenID: "tok-1",
					ExpiresAt: testNow.Add(5 * time.Minute), IssuedAt: testNow.Add(-10 * time.Second),
					NotBefore: testNow.Add(-10 * time.Second),
				}
				got := *vt
				got.Claims = nil
				if got.Alg != want.Alg || got.KID != want.KID || got.Issuer != want.Issuer || got.Subject != want.Subject ||
					got.Email != want.Email || got.TokenID != want.TokenID || got.ExternalUserID != "" || got.RoleIDs != nil ||
					!got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(want.IssuedAt) || !got.NotBefore.Equal(want.NotBefore) {
					t.Errorf("VerifiedToken = %+v\nwant %+v", got, want)
				}
				if vt.Claims["email"] != "ada@example.com" || vt.Claims["exp"] != json.Number(itoa(testNow.Add(5*time.Minute).Unix())) {
					t.Errorf("Claims = %v", vt.Claims)
				}
			},
		},
		{
			name: "aud array containing the audience",
			raw:  withClaims(func(c map[string]any) { c["aud"] = []string{"other", testAudience} }),
		},
		{
			name: "no kid: every key allowing the alg is tried",
			raw:  func(t *testing.T, ks *keyset) string { return build(t, ks.ed2, tok{noKID: true}) },
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if vt.KID != ks.ed2.pub.KID {
					t.Errorf("KID = %s, want the second Ed25519 key %s", vt.KID, ks.ed2.pub.KID)
				}
			},
		},
		{
			name: "empty kid counts as no kid",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.p384, tok{noKID: true, header: map[string]any{"kid": ""}})
			},
		},
		{
			name: "kid matching one of several keys",
			raw:  func(t *testing.T, ks *keyset) string { return build(t, ks.ed2, tok{}) },
			keys: func(ks *keyset) []domain.PublicKey {
				return []domain.PublicKey{ks.ed.pub, ks.rsa.pub, ks.ed2.pub, ks.p256.pub}
			},
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if vt.KID != ks.ed2.pub.KID {
					t.Errorf("KID = %s, want %s", vt.KID, ks.ed2.pub.KID)
				}
			},
		},
		{
			name: "JWKS-style kid shared by a PEM-less key",
			raw:  func(t *testing.T, ks *keyset) string { return build(t, ks.p256, tok{kid: "2031-key"}) },
			keys: func(ks *keyset) []domain.PublicKey {
				k := ks.p256.pub
				k.KID = "2031-key"
				return []domain.PublicKey{ks.rsa.pub, k}
			},
		},
		{
			name: "custom claim names in the mapping, role ids and external id mapped",
			raw: withClaims(func(c map[string]any) {
				delete(c, "email")
				delete(c, "jti")
				c["https://example.com/email"] = "grace@example.org"
				c["https://example.com/token_id"] = "custom-tid"
				c["https://example.com/roles"] = []string{"admin", "billing"}
				c["uid"] = "ext-42"
			}),
			policy: func(p *domain.TokenPolicy) {
				p.Mapping = domain.AttributeMapping{
					Email: "https://example.com/email", TokenID: "https://example.com/token_id",
					ExternalUserID: "uid", RoleIDs: "https://example.com/roles",
				}
			},
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if vt.Email != "grace@example.org" || vt.TokenID != "custom-tid" || vt.ExternalUserID != "ext-42" ||
					strings.Join(vt.RoleIDs, ",") != "admin,billing" {
					t.Errorf("mapped = %q %q %q %q", vt.Email, vt.TokenID, vt.ExternalUserID, vt.RoleIDs)
				}
			},
		},
		{
			name: "mapped role ids and external id absent",
			raw:  withClaims(nil),
			policy: func(p *domain.TokenPolicy) {
				p.Mapping.RoleIDs = "roles"
				p.Mapping.ExternalUserID = "uid"
			},
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if vt.RoleIDs != nil || vt.ExternalUserID != "" {
					t.Errorf("RoleIDs, ExternalUserID = %q, %q; want none", vt.RoleIDs, vt.ExternalUserID)
				}
			},
		},
		{
			name:   "empty role ids array",
			raw:    withClaims(func(c map[string]any) { c["roles"] = []string{} }),
			policy: func(p *domain.TokenPolicy) { p.Mapping.RoleIDs = "roles" },
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if vt.RoleIDs == nil || len(vt.RoleIDs) != 0 {
					t.Errorf("RoleIDs = %#v, want empty", vt.RoleIDs)
				}
			},
		},
		{
			name: "jti as the token id and sub absent",
			raw:  withClaims(func(c map[string]any) { delete(c, "sub") }),
		},
		{
			name: "expired but within skew",
			raw:  withClaims(func(c map[string]any) { c["exp"] = testNow.Add(-30 * time.Second).Unix() }),
		},
		{
			name: "exp exactly skew ago",
			raw:  withClaims(func(c map[string]any) { c["exp"] = testNow.Add(-60 * time.Second).Unix() }),
		},
		{
			name: "nbf exactly skew ahead",
			raw:  withClaims(func(c map[string]any) { c["nbf"] = testNow.Add(60 * time.Second).Unix() }),
		},
		{
			name: "iat exactly skew ahead",
			raw:  withClaims(func(c map[string]any) { c["iat"] = testNow.Add(60 * time.Second).Unix() }),
		},
		{
			name: "without nbf and iat",
			raw: withClaims(func(c map[string]any) {
				delete(c, "nbf")
				delete(c, "iat")
			}),
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if !vt.IssuedAt.IsZero() || !vt.NotBefore.IsZero() {
					t.Errorf("IssuedAt, NotBefore = %v, %v; want zero", vt.IssuedAt, vt.NotBefore)
				}
			},
		},
		{
			name: "fractional exp",
			raw: withClaims(func(c map[string]any) {
				c["exp"] = json.Number(fmt.Sprintf("%d.25", testNow.Add(time.Minute).Unix()))
			}),
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if want := testNow.Add(time.Minute + 250*time.Millisecond); !vt.ExpiresAt.Equal(want) {
					t.Errorf("ExpiresAt = %v, want %v", vt.ExpiresAt, want)
				}
			},
		},
		{
			name: "lifetime exactly the maximum",
			raw: withClaims(func(c map[string]any) {
				iat := testNow.Add(-10 * time.Second)
				c["iat"] = iat.Unix()
				c["exp"] = iat.Add(time.Hour).Unix()
			}),
		},
		{
			name:   "no lifetime limit",
			raw:    withClaims(func(c map[string]any) { c["exp"] = testNow.Add(365 * 24 * time.Hour).Unix() }),
			policy: func(p *domain.TokenPolicy) { p.MaxLifetime = 0 },
		},
		{
			name: "crit empty array",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"crit": []string{}}})
			},
		},
		{
			name: "typ and cty absent, cty not JWT",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"typ": nil, "cty": "application/example"}})
			},
		},
		{
			name: "embedded jwk ignored when the trusted key signed",
			raw: func(t *testing.T, ks *keyset) string {
				pub := ks.attackerEd.priv.Public().(ed25519.PublicKey)
				return build(t, ks.ed, tok{header: map[string]any{
					"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(pub)},
				}})
			},
		},
	}
	runVerifyCases(t, cases)
}

func itoa(n int64) string { return fmt.Sprint(n) }

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
// be wrong; they must fail closed, never panic, never verify a foreign alg.
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
