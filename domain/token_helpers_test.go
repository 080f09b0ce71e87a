package domain_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

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

// sign produces a JWS signature of input with alg, made by jwx's signer
// for alg. It signs whatever alg says with whatever key it is given, as an
// attacker would (HS256 with a public key's bytes, ES256 with any curve).
func sign(t testing.TB, alg string, priv any, input []byte) []byte {
	t.Helper()
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		t.Fatalf("sign: jwx knows no algorithm %s", alg)
	}
	s, err := jws.SignerFor(a)
	if err != nil {
		t.Fatalf("sign: no signer for %s: %v", alg, err)
	}
	sig, err := s.Sign(priv, input)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return sig
}

// selfSigned returns the DER of a self-signed certificate of priv's key,
// the kind of chain an x5c header carries.
func selfSigned(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
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

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n int64) string { return fmt.Sprint(n) }
