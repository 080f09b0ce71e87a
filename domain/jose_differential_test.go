package domain_test

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tat-worker/attest/domain"
)

// The differential tests hold our checklist against jwx's own reading of
// the same tokens: whatever we accept, jwx must accept too, with the same
// key, reading the same header and payload. We may only refuse more. See
// docs/decisions/0001-jose-on-jwx.md for where and why we refuse more.

// jwxVerify is jwx's own verification of a compact token: jws.Verify with
// each key under alg, compact only. It returns the verified payload.
func jwxVerify(raw, alg string, keys []crypto.PublicKey) ([]byte, error) {
	a, _ := jwa.LookupSignatureAlgorithm(alg)
	opts := []jws.VerifyOption{jws.WithCompact()}
	for _, k := range keys {
		opts = append(opts, jws.WithKey(a, k))
	}
	return jws.Verify([]byte(raw), opts...)
}

// jwxParseJWT is jwt.Parse with each key under alg: with pol nil, without
// validating the claims (jwt.WithValidate(false)); else with the validation
// that matches pol at testNow (issuer, audience, exp required, skew).
func jwxParseJWT(raw, alg string, keys []crypto.PublicKey, pol *domain.TokenPolicy) error {
	a, _ := jwa.LookupSignatureAlgorithm(alg)
	var opts []jwt.ParseOption
	for _, k := range keys {
		opts = append(opts, jwt.WithKey(a, k))
	}
	if pol == nil {
		opts = append(opts, jwt.WithValidate(false))
	} else {
		opts = append(opts, jwt.WithIssuer(pol.Issuer), jwt.WithAudience(pol.Audience), jwt.WithRequiredClaim("exp"),
			jwt.WithAcceptableSkew(pol.Skew), jwt.WithClock(jwt.ClockFunc(func() time.Time { return testNow })))
	}
	_, err := jwt.Parse([]byte(raw), opts...)
	return err
}

// diffStats counts what a differential run compared.
type diffStats struct {
	tokens, prechecked, accepted int
	expBoundary                  int // accepted at exp+skew, which jwt.Validate calls expired
}

// agree checks one token both ways and fails t when we accept what jwx
// does not, or read it differently. keys are the profile's keys.
func agree(t testing.TB, raw string, pol domain.TokenPolicy, keys []domain.PublicKey, st *diffStats) {
	t.Helper()
	st.tokens++
	p, err := domain.PrecheckToken(raw, pol.MaxTokenBytes)
	if err != nil {
		return
	}
	st.prechecked++
	// Parse level: jwx reads the token we prechecked, and reads it the
	// same way: alg, kid, payload and signature.
	msg, err := jws.Parse([]byte(raw), jws.WithCompact())
	if err != nil {
		t.Fatalf("PrecheckToken accepted a token jws.Parse refuses: %v\n%q", err, raw)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		t.Fatalf("jws.Parse read %d signatures", len(sigs))
	}
	hdr := sigs[0].ProtectedHeaders()
	if a, ok := hdr.Algorithm(); !ok || a.String() != p.Header.Alg {
		t.Fatalf("jwx reads alg %v, we read %q\n%q", a, p.Header.Alg, raw)
	}
	if kid, _ := hdr.KeyID(); kid != p.Header.Kid {
		t.Fatalf("jwx reads kid %q, we read %q\n%q", kid, p.Header.Kid, raw)
	}
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if !bytes.Equal(msg.Payload(), payload) {
		t.Fatalf("jwx reads another payload\n%q", raw)
	}
	if !bytes.Equal(sigs[0].Signature(), p.Signature()) {
		t.Fatalf("jwx reads another signature\n%q", raw)
	}

	vt, err := p.Verify(pol, keys, testNow)
	if err != nil {
		return
	}
	st.accepted++
	// The keys we could have verified with: the kid's (or every key for
	// no kid) that allow the alg. jwx must verify with one of them.
	var with []crypto.PublicKey
	for _, k := range keys {
		if k.KID == vt.KID && k.Allows(vt.Alg) {
			with = append(with, k.Key)
		}
	}
	got, err := jwxVerify(raw, vt.Alg, with)
	if err != nil {
		t.Fatalf("we accepted a token jws.Verify refuses: %v\n%q", err, raw)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("jws.Verify returned another payload\n%q", raw)
	}
	if err := jwxParseJWT(raw, vt.Alg, with, nil); err != nil {
		t.Fatalf("we accepted a token jwt.Parse (WithValidate(false)) refuses: %v\n%q", err, raw)
	}
	if err := jwxParseJWT(raw, vt.Alg, with, &pol); err != nil {
		// The one known difference (see the decision record): jwt.Parse
		// reads NumericDates to the whole second (rounded down) and
		// expires a token at exp+skew itself; we keep the fraction and
		// expire it after that instant. So it is at most one second.
		if !errors.Is(err, jwt.TokenExpiredError()) || testNow.Sub(vt.ExpiresAt.Add(pol.Skew)) <= -time.Second {
			t.Fatalf("we accepted a token whose claims jwt.Validate refuses: %v\n%q", err, raw)
		}
		st.expBoundary++
	}
}

func TestDifferentialJWXTables(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	tables := map[string][]verifyCase{
		"token_attack":        tokenAttackCases(),
		"token_attack_claims": claimAttackCases(),
		"token_accept":        tokenAcceptCases(),
		"token_precheck": {{name: "key URL in the header", raw: func(t *testing.T, ks *keyset) string {
			return build(t, ks.p256, tok{header: map[string]any{"jku": "https://evil.example/jwks"}})
		}}},
	}
	st := &diffStats{}
	for name, cases := range tables {
		for _, tc := range cases {
			raw := tc.raw(t, ks)
			keys := ks.trusted()
			if tc.keys != nil {
				keys = tc.keys(ks)
			}
			pol := testPolicy()
			if tc.policy != nil {
				tc.policy(&pol)
			}
			before := st.accepted
			agree(t, raw, pol, keys, st)
			if accepted := st.accepted > before; accepted != (tc.wantErr == nil) {
				t.Errorf("%s/%s: accepted %v, but the table wants error %v", name, tc.name, accepted, tc.wantErr)
			}
		}
	}
	t.Logf("%d table tokens compared with jwx: %d prechecked, %d accepted (jwx accepted each), %d at the exp+skew instant", st.tokens, st.prechecked, st.accepted, st.expBoundary)
}

// TestDifferentialJWXSessionJWT: a session JWT ParseJWT accepts is one
// jwx verifies with the worker's key and parses as a JWT.
func TestDifferentialJWXSessionJWT(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	s := testSession()
	s.CustomClaims = map[string]any{"plan": "pro", "seats": 3, "tat_\u017fession": "dropped"}
	minted, err := is.MintJWT(s, testNow)
	if err != nil {
		t.Fatal(err)
	}
	good := minted.Reveal()
	parts := strings.Split(good, ".")
	pub := crypto.PublicKey(&is.Keys[0].Private.PublicKey)
	accepted := 0
	for _, raw := range []string{
		good,
		good + "\n",
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + b64([]byte(`{"tat_session":{"session_id":"a"},"tat_session":{"session_id":"b"}}`)) + "." + parts[2],
		b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
	} {
		if _, err := is.ParseJWT(raw, testNow); err != nil {
			continue
		}
		accepted++
		if _, err := jwxVerify(raw, "ES256", []crypto.PublicKey{pub}); err != nil {
			t.Fatalf("ParseJWT accepted a JWT jws.Verify refuses: %v", err)
		}
		if err := jwxParseJWT(raw, "ES256", []crypto.PublicKey{pub}, nil); err != nil {
			t.Fatalf("ParseJWT accepted a JWT jwt.Parse refuses: %v", err)
		}
	}
	if accepted != 1 {
		t.Fatalf("ParseJWT accepted %d of the JWTs, want only the minted one", accepted)
	}
}

// jwxOnlyCase is one token built to find where jwx and we might disagree.
// We must refuse it (refused), or accept it; jwxVerifies pins what
// jws.Verify (compact or JSON as the token is, with key under alg) makes
// of it, so the decision record stays true when jwx changes.
type jwxOnlyCase struct {
	name        string
	raw         func(t *testing.T, ks *keyset) string
	key         func(ks *keyset) (alg string, key crypto.PublicKey) // jwx's key; default the Ed25519 one
	keys        func(ks *keyset) []domain.PublicKey                 // ours; default ks.trusted()
	refused     bool
	jwxVerifies bool
}

func TestDifferentialJWXAttackIdeas(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	edSig := func(t *testing.T) func([]byte) []byte {
		return func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) }
	}
	claims := func(t *testing.T) string { return mustJSON(t, goodClaims()) }
	edHdr := func(extra string) string { return `{"alg":"EdDSA","kid":"` + ks.ed.pub.KID + `"` + extra + `}` }

	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	cases := []jwxOnlyCase{
		{
			name: "baseline: a good token", jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{}) },
		},
		{
			// jws.Verify takes the algorithm from the key it is given and,
			// by default, never compares it with the header's.
			name: "duplicate alg, the last one none", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, edHdr(`,"alg":"none"`), claims(t), edSig(t))
			},
		},
		{
			name: "duplicate kid", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, edHdr(`,"kid":"other"`), claims(t), edSig(t))
			},
		},
		{
			name: "duplicate alg spelled with an escape, the first one none", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"\u0061lg":"none","alg":"EdDSA"}`, claims(t), edSig(t))
			},
		},
		{
			name: "ALG beside alg", jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, edHdr(`,"ALG":"none"`), claims(t), edSig(t))
			},
		},
		{
			name: "ALG instead of alg", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"ALG":"EdDSA","kid":"`+ks.ed.pub.KID+`"}`, claims(t), edSig(t))
			},
		},
		{
			name: "duplicate claim", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				p := strings.TrimSuffix(claims(t), "}") + `,"email":"eve@evil.example"}`
				return rawToken(t, edHdr(""), p, edSig(t))
			},
		},
		{
			// jwx reads the first object, re-encodes it as the signing
			// input and so fails the signature.
			name: "header with trailing data", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, edHdr("")+`{"alg":"none"}`, claims(t), edSig(t))
			},
		},
		{
			name: "crit naming an unknown extension", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, edHdr(`,"crit":["x-ext"],"x-ext":1`), claims(t), edSig(t))
			},
		},
		{
			name: "crit empty", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string { return rawToken(t, edHdr(`,"crit":[]`), claims(t), edSig(t)) },
		},
		{
			// jws.Verify honours b64 false without crit by default: the
			// payload segment is signed as it stands.
			name: "b64 false, unencoded payload, no crit", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				h := b64([]byte(edHdr(`,"b64":false`)))
				input := h + ".hello"
				return input + "." + b64(sign(t, "EdDSA", ks.ed.priv, []byte(input)))
			},
		},
		{
			name: "b64 false with crit b64", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				h := b64([]byte(edHdr(`,"b64":false,"crit":["b64"]`)))
				input := h + ".hello"
				return input + "." + b64(sign(t, "EdDSA", ks.ed.priv, []byte(input)))
			},
		},
		{
			name: "JWS JSON serialization", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return mustJSON(t, map[string]any{"protected": s[0], "payload": s[1], "signature": s[2]})
			},
		},
		{
			name: "trailing dot", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{}) + "." },
		},
		{
			// encoding/base64 skips newlines, and jwx decodes with it.
			name: "trailing newline", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{}) + "\n" },
		},
		{
			name: "padded signature", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				s := segments(build(t, ks.ed, tok{}))
				return s[0] + "." + s[1] + "." + base64.URLEncoding.EncodeToString(mustB64(t, s[2]))
			},
		},
		{
			name: "standard alphabet in the payload", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string {
				// Signed as sent, so only the alphabet differs: jwx guesses
				// the alphabet and decodes it, but re-encodes the payload
				// for the signing input, so the signature fails.
				h := b64([]byte(mustJSON(t, map[string]any{"alg": "EdDSA", "kid": ks.ed.pub.KID})))
				c := goodClaims()
				for pad := ""; ; pad += " " {
					c["pad"] = pad + "~~~???"
					p := base64.RawStdEncoding.EncodeToString([]byte(mustJSON(t, c)))
					if strings.ContainsAny(p, "+/") {
						input := h + "." + p
						return input + "." + b64(sign(t, "EdDSA", ks.ed.priv, []byte(input)))
					}
				}
			},
		},
		{
			// The same signature bytes, spelled a second way: jwx decodes
			// leniently and verifies it.
			name: "non-zero trailing bits in the signature", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
				s := segments(build(t, ks.ed, tok{}))
				sig := []byte(s[2]) // 86 characters: the last one has 4 unused bits
				sig[len(sig)-1] = alphabet[strings.IndexByte(alphabet, sig[len(sig)-1])|1]
				return s[0] + "." + s[1] + "." + string(sig)
			},
		},
		{
			// A zero ecdsa.PublicKey (no point): the standard library
			// panics in jwx's verifier; AlgsForKey gives it nothing.
			name: "EC key without a point, alg ES256", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.p256, tok{noKID: true}) },
			key: func(ks *keyset) (string, crypto.PublicKey) {
				return "ES256", &ecdsa.PublicKey{Curve: elliptic.P256()}
			},
			keys: func(ks *keyset) []domain.PublicKey {
				return []domain.PublicKey{{KID: "off-curve", Algs: []string{"ES256"}, Key: &ecdsa.PublicKey{Curve: elliptic.P256()}}}
			},
		},
		{
			name: "RSA 1024 key, alg RS256", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, signer{alg: "RS256", priv: rsa1024, pub: domain.PublicKey{KID: "weak"}}, tok{})
			},
			key: func(ks *keyset) (string, crypto.PublicKey) { return "RS256", &rsa1024.PublicKey },
			keys: func(ks *keyset) []domain.PublicKey {
				return []domain.PublicKey{{KID: "weak", Algs: rsaAlgs, Key: &rsa1024.PublicKey}}
			},
		},
		{
			name: "Ed25519 key of the wrong length", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string { return build(t, ks.ed, tok{noKID: true}) },
			key: func(ks *keyset) (string, crypto.PublicKey) {
				return "EdDSA", ed25519.PublicKey(ks.ed.pub.Key.(ed25519.PublicKey)[:31])
			},
			keys: func(ks *keyset) []domain.PublicKey {
				short := ed25519.PublicKey(ks.ed.pub.Key.(ed25519.PublicKey)[:31])
				return []domain.PublicKey{{KID: "short", Algs: []string{"EdDSA"}, Key: short}}
			},
		},
		{
			name: "Ed25519 signature one byte short", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{sigEdit: func(s []byte) []byte { return s[:len(s)-1] }})
			},
		},
		{
			name: "alg ES256 signed with a P-384 key", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, signer{alg: "ES256", priv: p384, pub: domain.PublicKey{KID: "p384"}}, tok{})
			},
			key: func(ks *keyset) (string, crypto.PublicKey) { return "ES256", &p384.PublicKey },
			keys: func(ks *keyset) []domain.PublicKey {
				return []domain.PublicKey{{KID: "p384", Algs: []string{"ES256", "ES384"}, Key: &p384.PublicKey}}
			},
		},
		{
			// RFC 9864's fully-specified name: jwx knows it, we do not.
			name: "alg Ed25519", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":"Ed25519","kid":"`+ks.ed.pub.KID+`"}`, claims(t), edSig(t))
			},
			key: func(ks *keyset) (string, crypto.PublicKey) { return "Ed25519", ks.ed.pub.Key },
		},
		{
			name: "alg none", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string { return rawToken(t, `{"alg":"none"}`, claims(t), nil) },
		},
		{
			name: "HS256 keyed with the PEM of the trusted Ed25519 key", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{alg: "HS256", sigWith: []byte(pemOf(t, ks.ed.priv.Public()))})
			},
			key: func(ks *keyset) (string, crypto.PublicKey) { return "HS256", []byte(pemOf(t, ks.ed.priv.Public())) },
		},
		{
			name: "embedded jwk of another key", refused: true, jwxVerifies: false,
			raw: func(t *testing.T, ks *keyset) string {
				pub := ks.attackerEd.priv.Public().(ed25519.PublicKey)
				return build(t, ks.attackerEd, tok{noKID: true, header: map[string]any{
					"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(pub)},
				}})
			},
		},
		{
			name: "jku pointing elsewhere, trusted key", jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"jku": "https://evil.example/jwks", "x5u": "https://evil.example/x"}})
			},
		},
		{
			name: "cty JWT", refused: true, jwxVerifies: true,
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"cty": "JWT"}})
			},
		},
	}

	st := &diffStats{}
	for _, tc := range cases {
		raw := tc.raw(t, ks)
		keys := ks.trusted()
		if tc.keys != nil {
			keys = tc.keys(ks)
		}
		pol := testPolicy()
		agree(t, raw, pol, keys, st)
		_, err := domain.VerifyToken(raw, pol, keys, testNow)
		if tc.refused != (err != nil) {
			t.Errorf("%s: VerifyToken = %v, want refused %v", tc.name, err, tc.refused)
		}
		alg, key := "EdDSA", crypto.PublicKey(ks.ed.pub.Key)
		if tc.key != nil {
			alg, key = tc.key(ks)
		}
		a, _ := jwa.LookupSignatureAlgorithm(alg)
		_, jerr := verifyNoPanic(func() ([]byte, error) { return jws.Verify([]byte(raw), jws.WithKey(a, key)) })
		if tc.jwxVerifies != (jerr == nil) {
			t.Errorf("%s: jws.Verify = %v, want verified %v (update the decision record if jwx changed)", tc.name, jerr, tc.jwxVerifies)
		}
	}
	t.Logf("%d attack-idea tokens compared, %d prechecked, %d accepted", st.tokens, st.prechecked, st.accepted)
}

// verifyNoPanic runs f, turning a panic (the standard library's on a
// malformed key) into an error.
func verifyNoPanic(f func() ([]byte, error)) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// readCorpus returns the values of every file of a fuzz corpus directory
// (the "go test fuzz v1" format: one Go literal per line).
func readCorpus(t testing.TB, dir string) [][]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no corpus in testdata/fuzz/%s", dir)
	}
	var out [][]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		var vals []any
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "go test fuzz"):
			case strings.HasPrefix(line, "string(") && strings.HasSuffix(line, ")"):
				s, err := strconv.Unquote(line[len("string(") : len(line)-1])
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				vals = append(vals, s)
			case (strings.HasPrefix(line, "byte(") || strings.HasPrefix(line, "uint8(")) && strings.HasSuffix(line, ")"):
				lit := line[strings.IndexByte(line, '(')+1 : len(line)-1]
				s, err := strconv.Unquote(lit)
				if err != nil || len(s) != 1 {
					n, nerr := strconv.ParseUint(lit, 0, 8)
					if nerr != nil {
						t.Fatalf("%s: %q", f, line)
					}
					vals = append(vals, uint8(n))
					continue
				}
				vals = append(vals, s[0])
			default:
				t.Fatalf("%s: unreadable corpus line %q", f, line)
			}
		}
		out = append(out, vals)
	}
	return out
}

func TestDifferentialJWXFuzzCorpora(t *testing.T) {
	t.Parallel()
	fk := newFuzzKeys(t)
	pol := testPolicy()
	pol.Mapping.RoleIDs = "roles"
	pol.Mapping.ExternalUserID = "uid"
	st := &diffStats{}
	for _, vals := range readCorpus(t, "FuzzPrecheckToken") {
		agree(t, vals[0].(string), pol, fk.trusted, st)
	}
	for _, s := range precheckSeeds() {
		agree(t, s, pol, fk.trusted, st)
	}
	for _, vals := range readCorpus(t, "FuzzVerifyToken") {
		raw := fk.fuzzToken(t, vals[0].(string), vals[1].(string), vals[2].(uint8))
		agree(t, raw, pol, fk.trusted, st)
	}
	for _, s := range verifySeeds(fk) {
		agree(t, fk.fuzzToken(t, s.header, s.payload, s.mode), pol, fk.trusted, st)
	}
	if st.accepted == 0 {
		t.Fatalf("no corpus token was accepted: the comparison compared nothing")
	}
	t.Logf("%d corpus tokens compared, %d prechecked, %d accepted", st.tokens, st.prechecked, st.accepted)
}

// FuzzDifferentialJWX signs fuzzed headers and payloads like
// FuzzVerifyToken (or takes a raw token) and asserts that whatever our
// checklist accepts, jwx accepts too and reads the same way.
func FuzzDifferentialJWX(f *testing.F) {
	fk := newFuzzKeys(f)
	for _, s := range verifySeeds(fk) {
		f.Add(s.header, s.payload, s.mode)
	}
	for _, s := range precheckSeeds() {
		f.Add(s, "", uint8(3))
	}
	pol := testPolicy()
	pol.Mapping.RoleIDs = "roles"
	pol.Mapping.ExternalUserID = "uid"
	f.Fuzz(func(t *testing.T, header, payload string, mode uint8) {
		agree(t, fk.fuzzToken(t, header, payload, mode), pol, fk.trusted, &diffStats{})
	})
}
