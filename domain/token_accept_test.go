package domain_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

func TestVerifyTokenAccepts(t *testing.T) {
	t.Parallel()
	runVerifyCases(t, tokenAcceptCases())
}

// tokenAcceptCases are tokens every rule accepts (the differential test
// against jwx reads them too).
func tokenAcceptCases() []verifyCase {
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
	return []verifyCase{
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
			name: "non-ASCII email in NFC",
			raw:  withClaims(func(c map[string]any) { c["email"] = "Jos\u00E9@b\u00FCcher.example" }),
			check: func(t *testing.T, ks *keyset, vt *domain.VerifiedToken) {
				if vt.Email != "Jos\u00E9@b\u00FCcher.example" {
					t.Errorf("Email = %+q, want the claim as sent", vt.Email)
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
}

// TestVerifyTokenBounds: every bound of the checklist includes its limit
// and refuses one step beyond it: NumericDates from 0 (the epoch) to the
// last second of 9999, an email claim of MaxEmailBytes, a token id of
// MaxTokenIDBytes, a token of exactly the policy's MaxTokenBytes.
func TestVerifyTokenBounds(t *testing.T) {
	t.Parallel()
	const endOf9999 = 253402300799 // 9999-12-31T23:59:59Z
	email := func(n int) string {  // a bare address of exactly n bytes
		return strings.Repeat("a", 64) + "@" + strings.Repeat("b", n-64-1-len(".com")) + ".com"
	}
	// sized builds a good token and sets the policy's MaxTokenBytes to its
	// length plus extra.
	sized := func(extra int) (func(t *testing.T, ks *keyset) string, func(p *domain.TokenPolicy)) {
		var n int
		return func(t *testing.T, ks *keyset) string {
				raw := build(t, ks.ed, tok{})
				n = len(raw)
				return raw
			}, func(p *domain.TokenPolicy) {
				p.MaxTokenBytes = n + extra
			}
	}
	exactRaw, exactPolicy := sized(0)
	overRaw, overPolicy := sized(-1)
	runVerifyCases(t, []verifyCase{
		{
			name: "nbf at the epoch",
			raw:  withClaims(func(c map[string]any) { c["nbf"] = 0 }),
			check: func(t *testing.T, _ *keyset, vt *domain.VerifiedToken) {
				if !vt.NotBefore.Equal(time.Unix(0, 0)) {
					t.Errorf("NotBefore = %v", vt.NotBefore)
				}
			},
		},
		{
			name:    "nbf one second before the epoch",
			raw:     withClaims(func(c map[string]any) { c["nbf"] = -1 }),
			wantErr: domain.ErrInvalidClaims, wantMsg: "between 1970 and 9999",
		},
		{
			name:   "exp at the last second of 9999, no lifetime limit",
			raw:    withClaims(func(c map[string]any) { c["exp"] = endOf9999 }),
			policy: func(p *domain.TokenPolicy) { p.MaxLifetime = 0 },
			check: func(t *testing.T, _ *keyset, vt *domain.VerifiedToken) {
				if !vt.ExpiresAt.Equal(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)) {
					t.Errorf("ExpiresAt = %v", vt.ExpiresAt)
				}
			},
		},
		{
			name:    "exp one second after 9999",
			raw:     withClaims(func(c map[string]any) { c["exp"] = endOf9999 + 1 }),
			policy:  func(p *domain.TokenPolicy) { p.MaxLifetime = 0 },
			wantErr: domain.ErrInvalidClaims, wantMsg: "between 1970 and 9999",
		},
		{
			name: "email of MaxEmailBytes",
			raw:  withClaims(func(c map[string]any) { c["email"] = email(domain.MaxEmailBytes) }),
			check: func(t *testing.T, _ *keyset, vt *domain.VerifiedToken) {
				if vt.Email != email(domain.MaxEmailBytes) {
					t.Errorf("Email = %q", vt.Email)
				}
			},
		},
		{
			name:    "email of MaxEmailBytes+1",
			raw:     withClaims(func(c map[string]any) { c["email"] = email(domain.MaxEmailBytes + 1) }),
			wantErr: domain.ErrInvalidClaims, wantMsg: "longer than",
		},
		{
			name: "token id of MaxTokenIDBytes",
			raw:  withClaims(func(c map[string]any) { c["jti"] = strings.Repeat("j", domain.MaxTokenIDBytes) }),
			check: func(t *testing.T, _ *keyset, vt *domain.VerifiedToken) {
				if len(vt.TokenID) != domain.MaxTokenIDBytes {
					t.Errorf("TokenID of %d bytes", len(vt.TokenID))
				}
			},
		},
		{
			name:    "token id of MaxTokenIDBytes+1",
			raw:     withClaims(func(c map[string]any) { c["jti"] = strings.Repeat("j", domain.MaxTokenIDBytes+1) }),
			wantErr: domain.ErrInvalidClaims, wantMsg: "longer than",
		},
		{name: "a token of exactly MaxTokenBytes", raw: exactRaw, policy: exactPolicy},
		{name: "a token one byte over MaxTokenBytes", raw: overRaw, policy: overPolicy, wantErr: domain.ErrInvalidToken, wantMsg: "larger than"},
	})
}
