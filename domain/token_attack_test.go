package domain_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

func TestVerifyTokenRefusesAttacks(t *testing.T) {
	t.Parallel()
	runVerifyCases(t, append(tokenAttackCases(), claimAttackCases()...))
}

// tokenAttackCases are the tokens of the JOSE rules, each refused by one
// (the differential test against jwx reads them too).
func tokenAttackCases() []verifyCase {
	hdr := func(alg string) string { return `{"alg":"` + alg + `","typ":"JWT"}` }
	payload := func(t *testing.T) string { return mustJSON(t, goodClaims()) }

	return []verifyCase{
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
			name: "two parts", wantErr: domain.ErrInvalidToken, wantMsg: "it has 2 parts, 3 are required",
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
			name: "crit empty array", wantErr: domain.ErrInvalidToken, wantMsg: "the token header has an empty crit list, which RFC 7515 forbids",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"crit": []string{}}})
			},
		},
		{
			name: "crit empty array, spelled with whitespace", wantErr: domain.ErrInvalidToken, wantMsg: "empty crit list",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":"EdDSA","crit":[ ]}`, mustJSON(t, goodClaims()), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
		},
		{
			name: "crit null", wantErr: domain.ErrInvalidToken, wantMsg: "critical extensions (crit)",
			raw: func(t *testing.T, ks *keyset) string {
				return rawToken(t, `{"alg":"EdDSA","crit":null}`, mustJSON(t, goodClaims()), func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
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
				return build(t, ks.attackerRSA, tok{noKID: true, header: map[string]any{
					"x5c": []string{base64.StdEncoding.EncodeToString(selfSigned(t, ks.attackerRSA.priv))},
				}})
			},
		},
		{
			name: "x5c that is not a certificate", wantErr: domain.ErrInvalidToken, wantMsg: "malformed key hint",
			raw: func(t *testing.T, ks *keyset) string {
				der, err := x509.MarshalPKIXPublicKey(ks.attackerRSA.priv.Public())
				if err != nil {
					t.Fatal(err)
				}
				return build(t, ks.rsa, tok{header: map[string]any{
					"x5c": []string{base64.StdEncoding.EncodeToString(der)},
				}})
			},
		},
		{
			name: "jwk that is not a valid key", wantErr: domain.ErrInvalidToken, wantMsg: "malformed key hint",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AA"}}})
			},
		},
		{
			name: "jku not a string", wantErr: domain.ErrInvalidToken, wantMsg: "malformed key hint",
			raw: func(t *testing.T, ks *keyset) string {
				return build(t, ks.ed, tok{header: map[string]any{"jku": 7}})
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
	}
}
