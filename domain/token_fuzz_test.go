package domain_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// precheckSeeds are tokens that reach every step of PrecheckToken; their
// signatures are junk, which the pre-checks never look at.
func precheckSeeds() []string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	claims := `{"iss":"https://issuer.example.com","aud":"project-live-attest","exp":1893553745,"email":"ada@example.com","jti":"tok-1"}`
	tokenOf := func(header string) string { return enc(header) + "." + enc(claims) + ".c2ln" }
	seeds := []string{
		tokenOf(`{"alg":"RS256","typ":"JWT","kid":"k1"}`),
		tokenOf(`{"alg":"PS512"}`),
		tokenOf(`{"alg":"ES256","kid":"k1"}`),
		tokenOf(`{"alg":"EdDSA","crit":[]}`),
		tokenOf(`{"alg":"none"}`),
		enc(`{"alg":"nOnE"}`) + "." + enc(claims) + ".",
		tokenOf(`{"alg":"HS256"}`),
		tokenOf(`{"alg":"ES256K"}`),
		tokenOf(`{"alg":"RS256","crit":["exp"]}`),
		tokenOf(`{"alg":"RS256","b64":false}`),
		tokenOf(`{"alg":"RS256","cty":"JWT"}`),
		tokenOf(`{"alg":"RS256","alg":"RS256"}`),
		tokenOf(`{"alg":"RS256","\u0061lg":"none"}`),
		tokenOf(`{"alg":"RS256","jku":"https://evil.example/jwks","x5u":"https://evil.example/x","jwk":{"kty":"OKP"},"x5c":["AAAA"]}`),
		tokenOf(`{"alg":"RS256"} `),
		tokenOf(`{"alg":"RS256"}{}`),
		tokenOf(`[{"alg":"RS256"}]`),
		tokenOf(`{"alg":"RS256","kid":7}`),
		tokenOf(`{"alg":"RS256","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`),
		tokenOf("{\"alg\":\"RS256\",\"kid\":\"\xff\"}"),
		enc(`{"alg":"RS256"}`) + "." + enc(`{"iss":"a","iss":"b"}`) + ".c2ln",
		enc(`{"alg":"RS256"}`) + "." + enc(`{"exp":1e400,"n":-0.5e-10}`) + ".c2ln",
		enc(`{"alg":"RS256"}`) + ".." + "c2ln",
		"eyJhbGciOiJSUzI1NiJ9.e30=.c2ln",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2l+",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2l",
		"eyJhbGciOiJSUzI1NiJ9 .e30.c2ln",
		`{"payload":"e30","signatures":[]}`,
		"a.b.c.d.e",
		"...",
		"",
	}
	return seeds
}

// FuzzPrecheckToken feeds arbitrary strings to PrecheckToken. It must never
// panic; a refusal is always an ErrInvalidToken that does not echo the
// token; an accepted token is a canonical compact JWS whose header a plain
// encoding/json decode reads the same way.
func FuzzPrecheckToken(f *testing.F) {
	for _, s := range precheckSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := domain.PrecheckToken(raw, 0)
		if err != nil {
			checkRefusal(t, raw, err, domain.ErrInvalidToken)
			if p != nil {
				t.Fatalf("PrecheckToken returned a token and an error")
			}
			return
		}
		if len(raw) > domain.DefaultMaxTokenBytes {
			t.Fatalf("accepted a token of %d bytes", len(raw))
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		decoded := make([][]byte, 3)
		for i, part := range parts {
			b, err := base64.RawURLEncoding.DecodeString(part)
			if err != nil {
				t.Fatalf("accepted part %d that is not base64url: %v", i, err)
			}
			if base64.RawURLEncoding.EncodeToString(b) != part {
				t.Fatalf("accepted part %d in a non-canonical spelling", i)
			}
			decoded[i] = b
		}
		if !domain.SupportedAlg(p.Header.Alg) {
			t.Fatalf("accepted alg %q", p.Header.Alg)
		}
		if string(p.SigningInput()) != parts[0]+"."+parts[1] {
			t.Fatalf("SigningInput is not the first two parts")
		}
		if len(p.Signature()) == 0 || !bytes.Equal(p.Signature(), decoded[2]) {
			t.Fatalf("Signature is not the decoded third part")
		}
		// Differential: with duplicates and trailing data refused, the
		// standard decoder must read the same header and issuer.
		hdr, err := stdDecode(decoded[0])
		if err != nil {
			t.Fatalf("accepted a header encoding/json refuses: %v", err)
		}
		if hdr["alg"] != p.Header.Alg {
			t.Fatalf("header alg %v, Precheck read %q", hdr["alg"], p.Header.Alg)
		}
		if kid, _ := hdr["kid"].(string); kid != p.Header.Kid {
			t.Fatalf("header kid %q, Precheck read %q", kid, p.Header.Kid)
		}
		if _, ok := hdr["b64"]; ok {
			t.Fatalf("accepted a header with b64")
		}
		if crit, ok := hdr["crit"]; ok {
			t.Fatalf("accepted crit %v", crit)
		}
		if cty, _ := hdr["cty"].(string); strings.EqualFold(cty, "jwt") {
			t.Fatalf("accepted cty %q", cty)
		}
		claims, err := stdDecode(decoded[1])
		if err != nil {
			t.Fatalf("accepted a payload encoding/json refuses: %v", err)
		}
		if iss, _ := claims["iss"].(string); iss != p.UnverifiedIssuer() {
			t.Fatalf("payload iss %q, UnverifiedIssuer %q", iss, p.UnverifiedIssuer())
		}
	})
}

// checkRefusal asserts the invariants of every refusal: a *domain.Error of
// the wanted code (or one of the claim codes when want is nil), never an
// internal error, never carrying the raw token.
func checkRefusal(t *testing.T, raw string, err error, want error) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %T (%v) is not a *domain.Error", err, err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	allowed := []error{domain.ErrInvalidToken, domain.ErrInvalidIssuer, domain.ErrInvalidAudience,
		domain.ErrExpired, domain.ErrNotYetValid, domain.ErrInvalidClaims}
	if !slices.ContainsFunc(allowed, func(e error) bool { return errors.Is(err, e) }) {
		t.Fatalf("error %v has an unexpected code", err)
	}
	if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
		t.Fatalf("the error carries the raw token")
	}
}

// fuzzKeys are fixed keys, so that corpus entries stay meaningful from run
// to run: two trusted (Ed25519, P-256), one attacker's (Ed25519), and a
// trusted RSA key made per run that no corpus entry can sign for.
type fuzzKeys struct {
	ed, attacker ed25519.PrivateKey
	p256         *ecdsa.PrivateKey
	trusted      []domain.PublicKey
}

func newFuzzKeys(t testing.TB) *fuzzKeys {
	t.Helper()
	seed := func(b byte) []byte { return bytes.Repeat([]byte{b}, ed25519.SeedSize) }
	p256, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fk := &fuzzKeys{ed: ed25519.NewKeyFromSeed(seed(1)), attacker: ed25519.NewKeyFromSeed(seed(2)), p256: p256}
	fk.trusted = []domain.PublicKey{pemKey(t, fk.ed.Public()), pemKey(t, p256.Public()), pemKey(t, rsaKey.Public())}
	return fk
}

// fuzzToken builds the token of one FuzzVerifyToken input: header and
// payload JSON signed by the key mode picks (mode 3: header is the whole
// raw token).
func (fk *fuzzKeys) fuzzToken(t testing.TB, header, payload string, mode uint8) string {
	if mode%4 == 3 {
		return header
	}
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	var sig []byte
	switch mode % 4 {
	case 0:
		sig = sign(t, "EdDSA", fk.ed, []byte(input))
	case 1:
		sig = sign(t, "ES256", fk.p256, []byte(input))
	case 2:
		sig = sign(t, "EdDSA", fk.attacker, []byte(input))
	}
	return input + "." + b64(sig)
}

// verifySeed is one FuzzVerifyToken input.
type verifySeed struct {
	header, payload string
	mode            uint8
}

// verifySeeds reach every rule of VerifyToken, for each signer.
func verifySeeds(fk *fuzzKeys) []verifySeed {
	kid := func(i int) string { return fk.trusted[i].KID }
	now := testNow.Unix()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":[%q],"sub":"u1","email":"ada@example.com","jti":"tok-1","iat":%d,"nbf":%d,"exp":%d%s}`,
			testIssuer, testAudience, now-10, now-10, now+300, extra)
	}
	return []verifySeed{
		{`{"alg":"EdDSA","kid":"` + kid(0) + `"}`, claims(""), uint8(0)},
		{`{"alg":"EdDSA"}`, claims(`,"roles":["a","b"],"uid":"x"`), uint8(0)},
		{`{"alg":"ES256","kid":"` + kid(1) + `","typ":"JWT"}`, claims(""), uint8(1)},
		{`{"alg":"ES256","crit":[]}`, claims(`,"exp":1`), uint8(1)},
		{`{"alg":"EdDSA","kid":"` + kid(0) + `"}`, claims(""), uint8(2)},
		{`{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + b64(fk.attacker.Public().(ed25519.PublicKey)) + `"}}`, claims(""), uint8(2)},
		{`{"alg":"RS256","kid":"` + kid(0) + `"}`, claims(""), uint8(0)},
		{`{"alg":"ES256","kid":"` + kid(2) + `"}`, claims(""), uint8(1)},
		{`{"alg":"HS256"}`, claims(""), uint8(0)},
		{`{"alg":"EdDSA"}`, `{"iss":"https://issuer.example.com","exp":"soon"}`, uint8(0)},
		{`{"alg":"EdDSA"}`, claims(`,"email":"x"`), uint8(0)},
		{`{"alg":"EdDSA"}`, fmt.Sprintf(`{"iss":%q,"aud":%q,"email":"Ada <ada@example.com>","jti":"t","exp":%d.5}`, testIssuer, testAudience, now), uint8(0)},
		{`{"alg":"EdDSA"}`, fmt.Sprintf(`{"iss":%q,"aud":%q,"email":"a@b.c","jti":"t","exp":%d,"nbf":%d}`, testIssuer, testAudience, now+4000, now+61), uint8(0)},
		{"eyJhbGciOiJFZERTQSJ9.e30.c2ln", "", uint8(3)},
	}
}

// FuzzVerifyToken signs fuzzed headers and payloads with trusted or
// attacker keys (or takes a raw token) and verifies them. It must never
// panic; a refusal is always one of the token error codes; an accepted
// token was signed by a trusted key that allows its alg (checked again with
// the standard library) and satisfies every claim rule.
func FuzzVerifyToken(f *testing.F) {
	fk := newFuzzKeys(f)
	for _, s := range verifySeeds(fk) {
		f.Add(s.header, s.payload, s.mode)
	}
	pol := testPolicy()
	pol.Mapping.RoleIDs = "roles"
	pol.Mapping.ExternalUserID = "uid"
	f.Fuzz(func(t *testing.T, header, payload string, mode uint8) {
		raw := fk.fuzzToken(t, header, payload, mode)
		vt, err := domain.VerifyToken(raw, pol, fk.trusted, testNow)
		if err != nil {
			checkRefusal(t, raw, err, nil)
			if vt != nil {
				t.Fatalf("VerifyToken returned a token and an error")
			}
			return
		}
		if mode%4 == 2 {
			t.Fatalf("a token signed by the attacker's key was accepted")
		}
		i := slices.IndexFunc(fk.trusted, func(k domain.PublicKey) bool { return k.KID == vt.KID })
		if i < 0 || !fk.trusted[i].Allows(vt.Alg) {
			t.Fatalf("accepted with key %q that does not allow %s", vt.KID, vt.Alg)
		}
		parts := strings.Split(raw, ".")
		input := []byte(parts[0] + "." + parts[1])
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		switch vt.Alg {
		case "EdDSA":
			if !ed25519.Verify(fk.ed.Public().(ed25519.PublicKey), input, sig) {
				t.Fatalf("accepted an EdDSA signature the standard library refuses")
			}
		case "ES256":
			d := sha256.Sum256(input)
			if len(sig) != 64 || !ecdsa.Verify(&fk.p256.PublicKey, d[:], bigInt(sig[:32]), bigInt(sig[32:])) {
				t.Fatalf("accepted an ES256 signature the standard library refuses")
			}
		default:
			t.Fatalf("accepted alg %s that no fuzz signer produces", vt.Alg)
		}
		checkAcceptedClaims(t, vt, pol)
	})
}

// checkAcceptedClaims restates the claim rules on an accepted token.
func checkAcceptedClaims(t *testing.T, vt *domain.VerifiedToken, pol domain.TokenPolicy) {
	t.Helper()
	if vt.Issuer != pol.Issuer || vt.Claims["iss"] != pol.Issuer {
		t.Fatalf("accepted iss %v", vt.Claims["iss"])
	}
	switch aud := vt.Claims["aud"].(type) {
	case string:
		if aud != pol.Audience {
			t.Fatalf("accepted aud %q", aud)
		}
	case []any:
		if !slices.Contains(aud, any(pol.Audience)) {
			t.Fatalf("accepted aud %v", aud)
		}
	default:
		t.Fatalf("accepted aud %v", aud)
	}
	if vt.ExpiresAt.IsZero() || testNow.After(vt.ExpiresAt.Add(pol.Skew)) {
		t.Fatalf("accepted exp %v at %v", vt.ExpiresAt, testNow)
	}
	if vt.NotBefore.After(testNow.Add(pol.Skew)) || vt.IssuedAt.After(testNow.Add(pol.Skew)) {
		t.Fatalf("accepted nbf %v / iat %v at %v", vt.NotBefore, vt.IssuedAt, testNow)
	}
	from := testNow
	if !vt.IssuedAt.IsZero() {
		from = vt.IssuedAt
	}
	if vt.ExpiresAt.Sub(from) > pol.MaxLifetime {
		t.Fatalf("accepted a lifetime of %v", vt.ExpiresAt.Sub(from))
	}
	if vt.Email == "" || len(vt.Email) > domain.MaxEmailBytes || !strings.Contains(vt.Email, "@") || vt.Claims[pol.Mapping.Email] != vt.Email {
		t.Fatalf("accepted email %q", vt.Email)
	}
	if _, err := domain.NormalizeEmail(vt.Email); err != nil {
		t.Fatalf("accepted email %+q that NormalizeEmail refuses: %v", vt.Email, err)
	}
	if vt.TokenID == "" || len(vt.TokenID) > domain.MaxTokenIDBytes || vt.Claims[pol.Mapping.TokenID] != vt.TokenID {
		t.Fatalf("accepted token id %q", vt.TokenID)
	}
}

func bigInt(b []byte) *big.Int { return new(big.Int).SetBytes(b) }

// stdDecode is the plain encoding/json reading of a JSON object, numbers
// kept as json.Number.
func stdDecode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return m, nil
}
