package domain_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// claimAttackCases are the refusals of TestVerifyTokenRefusesAttacks that
// concern the claims of a well-signed token: iss, aud, the times, the
// mapped claims, and the policy itself.
func claimAttackCases() []verifyCase {
	return []verifyCase{
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
			name: "nbf null", wantErr: domain.ErrInvalidClaims, wantMsg: "nbf is not a number",
			raw: withClaims(func(c map[string]any) { c["nbf"] = nil }),
		},
		{
			name: "iat null", wantErr: domain.ErrInvalidClaims, wantMsg: "iat is not a number",
			raw: withClaims(func(c map[string]any) { c["iat"] = nil }),
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
			name: "email with the Kelvin sign (looks like kim@)", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "\u212Aim@example.com" }),
		},
		{
			name: "email with U+0130 (lowers to kim@)", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "K\u0130M@example.com" }),
		},
		{
			name: "email ending in a no-break space", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "ada@example.com\u00A0" }),
		},
		{
			name: "email ending in U+0085", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "ada@example.com\u0085" }),
		},
		{
			name: "email with a zero-width space", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "a\u200Bda@example.com" }),
		},
		{
			name: "email in NFD", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "jose\u0301@example.com" }),
		},
		{
			name: "email with a fullwidth letter", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: withClaims(func(c map[string]any) { c["email"] = "\uFF41da@example.com" }),
		},
		{
			// encoding/json decodes every lone surrogate escape to U+FFFD, so
			// two addresses an issuer holds apart would share one key.
			name: "email with a lone surrogate escape", wantErr: domain.ErrInvalidClaims, wantMsg: "not a valid email",
			raw: func(t *testing.T, ks *keyset) string {
				c := goodClaims()
				c["email"] = "EMAIL"
				payload := strings.Replace(mustJSON(t, c), "EMAIL", `ki\ud800m@example.com`, 1)
				header := mustJSON(t, map[string]any{"alg": "EdDSA", "kid": ks.ed.pub.KID})
				return rawToken(t, header, payload, func(in []byte) []byte { return sign(t, "EdDSA", ks.ed.priv, in) })
			},
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
			name: "jti not a string while another claim is the token id", wantErr: domain.ErrInvalidClaims, wantMsg: "jti is not a string",
			raw: withClaims(func(c map[string]any) {
				c["jti"] = 17
				c["tid"] = "tok-1"
			}),
			policy: func(p *domain.TokenPolicy) { p.Mapping.TokenID = "tid" },
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
}
