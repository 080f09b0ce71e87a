package domain_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// edPEM returns the PKIX PEM of the Ed25519 key made from seed byte i, so
// that tests get distinct, stable keys without the cost of RSA.
func edPEM(t testing.TB, i byte) string {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return pemOf(t, ed25519.NewKeyFromSeed(seed).Public())
}

func edPEMs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = edPEM(t, byte(i+1))
	}
	return out
}

// validPEMSpec is a profile NewProfile accepts, with one static key.
func validPEMSpec(t testing.TB) domain.ProfileSpec {
	return domain.ProfileSpec{
		ProfileID:        domain.ProfileIDPrefix + "1",
		Name:             "Zendesk SSO",
		Issuer:           "https://idp.example.com/",
		Audience:         "my-app",
		PublicKeys:       edPEMs(t, 1),
		AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"},
	}
}

func validJWKSSpec(t testing.TB) domain.ProfileSpec {
	s := validPEMSpec(t)
	s.PublicKeys = nil
	s.JWKSURL = "https://idp.example.com/.well-known/jwks.json"
	return s
}

func TestNewProfileRefuses(t *testing.T) {
	t.Parallel()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := rfc7638RSAKey(t)
	jwks := func(u string) func(s *domain.ProfileSpec) {
		return func(s *domain.ProfileSpec) { s.PublicKeys, s.JWKSURL = nil, u }
	}
	for _, tc := range []struct {
		name    string
		edit    func(s *domain.ProfileSpec)
		rules   domain.ProfileRules
		wantErr error
		wantMsg string
	}{
		{name: "both jwks_url and public_keys", edit: func(s *domain.ProfileSpec) { s.JWKSURL = "https://idp.example.com/jwks" }, wantErr: domain.ErrProfileInvalid, wantMsg: "not both"},
		{name: "neither jwks_url nor public_keys", edit: func(s *domain.ProfileSpec) { s.PublicKeys = nil }, wantErr: domain.ErrProfileInvalid, wantMsg: "one of"},
		{name: "empty public_keys list", edit: func(s *domain.ProfileSpec) { s.PublicKeys = []string{} }, wantErr: domain.ErrProfileInvalid, wantMsg: "one of"},
		{name: "http jwks_url by default", edit: jwks("http://idp.example.com/jwks"), wantErr: domain.ErrProfileInvalid, wantMsg: "https"},
		{name: "http jwks_url in upper case by default", edit: jwks("HTTP://idp.example.com/jwks"), wantErr: domain.ErrProfileInvalid, wantMsg: "https"},
		{name: "ftp jwks_url even when http is allowed", edit: jwks("ftp://idp.example.com/jwks"), rules: domain.ProfileRules{AllowHTTPJWKS: true}, wantErr: domain.ErrProfileInvalid, wantMsg: "https"},
		{name: "file jwks_url", edit: jwks("file:///etc/jwks.json"), wantErr: domain.ErrProfileInvalid},
		{name: "jwks_url not a URL", edit: jwks("not a url"), wantErr: domain.ErrProfileInvalid, wantMsg: "not a valid absolute URL"},
		{name: "jwks_url relative", edit: jwks("/.well-known/jwks.json"), wantErr: domain.ErrProfileInvalid, wantMsg: "not a valid absolute URL"},
		{name: "jwks_url without a host", edit: jwks("https:///jwks.json"), wantErr: domain.ErrProfileInvalid, wantMsg: "not a valid absolute URL"},
		{name: "jwks_url with a bad escape", edit: jwks("https://idp.example.com/%zz"), wantErr: domain.ErrProfileInvalid, wantMsg: "not a valid absolute URL"},
		{name: "jwks_url over 2048 characters", edit: jwks("https://idp.example.com/" + strings.Repeat("a", 2048)), wantErr: domain.ErrProfileInvalid, wantMsg: "not a valid absolute URL"},
		{name: "jwks_url with user and password", edit: jwks("https://user:pass@idp.example.com/jwks"), wantErr: domain.ErrProfileInvalid, wantMsg: "credentials"},
		{name: "jwks_url with a user only", edit: jwks("https://user@idp.example.com/jwks"), wantErr: domain.ErrProfileInvalid, wantMsg: "credentials"},
		{name: "jwks_url with credentials even when http is allowed", edit: jwks("http://u:p@localhost:8080/jwks"), rules: domain.ProfileRules{AllowHTTPJWKS: true}, wantErr: domain.ErrProfileInvalid, wantMsg: "credentials"},
		{name: "jwks_url with a fragment", edit: jwks("https://idp.example.com/jwks#keys"), wantErr: domain.ErrProfileInvalid, wantMsg: "fragment"},
		{name: "six PEMs", edit: func(s *domain.ProfileSpec) { s.PublicKeys = edPEMs(t, 6) }, wantErr: domain.ErrTooManyPEMs},
		{name: "six PEMs, all bad", edit: func(s *domain.ProfileSpec) { s.PublicKeys = strings.Split("a,b,c,d,e,f", ",") }, wantErr: domain.ErrTooManyPEMs},
		{name: "a PEM repeated", edit: func(s *domain.ProfileSpec) { s.PublicKeys = []string{edPEM(t, 1), edPEM(t, 2), edPEM(t, 1)} }, wantErr: domain.ErrProfileInvalid, wantMsg: "public_keys[2] repeats"},
		{name: "a PEM repeated with other whitespace", edit: func(s *domain.ProfileSpec) { s.PublicKeys = []string{edPEM(t, 1), "\n  " + edPEM(t, 1) + "\n\n"} }, wantErr: domain.ErrProfileInvalid, wantMsg: "repeats"},
		{
			name: "one RSA key as PKIX and as PKCS #1",
			edit: func(s *domain.ProfileSpec) {
				s.PublicKeys = []string{pemOf(t, rsaPub), pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rsaPub))}
			},
			wantErr: domain.ErrProfileInvalid, wantMsg: "repeats",
		},
		{name: "bad PEM", edit: func(s *domain.ProfileSpec) { s.PublicKeys = []string{"not a pem"} }, wantErr: domain.ErrProfileInvalid, wantMsg: "public_keys[0]"},
		{
			name: "bad PEM after a good one",
			edit: func(s *domain.ProfileSpec) {
				s.PublicKeys = []string{edPEM(t, 1), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}
			},
			wantErr: domain.ErrProfileInvalid, wantMsg: "public_keys[1]",
		},
		{
			name: "a private key",
			edit: func(s *domain.ProfileSpec) {
				der, err := x509.MarshalPKCS8PrivateKey(p256)
				if err != nil {
					t.Fatal(err)
				}
				s.PublicKeys = []string{pemBlock("PRIVATE KEY", der)}
			},
			wantErr: domain.ErrProfileInvalid, wantMsg: "public_keys[0]",
		},
		{name: "missing issuer", edit: func(s *domain.ProfileSpec) { s.Issuer = "" }, wantErr: domain.ErrProfileInvalid, wantMsg: "issuer"},
		{name: "issuer over 2048 characters", edit: func(s *domain.ProfileSpec) { s.Issuer = strings.Repeat("i", 2049) }, wantErr: domain.ErrProfileInvalid, wantMsg: "issuer"},
		{name: "missing audience", edit: func(s *domain.ProfileSpec) { s.Audience = "" }, wantErr: domain.ErrProfileInvalid, wantMsg: "audience"},
		{name: "missing mapping for email", edit: func(s *domain.ProfileSpec) { s.AttributeMapping.Email = "" }, wantErr: domain.ErrProfileInvalid, wantMsg: "attribute_mapping.email"},
		{name: "missing mapping for token_id", edit: func(s *domain.ProfileSpec) { s.AttributeMapping.TokenID = "" }, wantErr: domain.ErrProfileInvalid, wantMsg: "attribute_mapping.token_id"},
		{name: "mapping claim over 256 characters", edit: func(s *domain.ProfileSpec) { s.AttributeMapping.RoleIDs = strings.Repeat("r", 257) }, wantErr: domain.ErrProfileInvalid, wantMsg: "attribute_mapping.role_ids"},
		{name: "missing profile_id", edit: func(s *domain.ProfileSpec) { s.ProfileID = "" }, wantErr: domain.ErrProfileInvalid, wantMsg: "profile_id"},
		{name: "profile_id with a space", edit: func(s *domain.ProfileSpec) { s.ProfileID = "my profile" }, wantErr: domain.ErrProfileInvalid, wantMsg: "profile_id"},
		{name: "profile_id with a slash", edit: func(s *domain.ProfileSpec) { s.ProfileID = "a/b" }, wantErr: domain.ErrProfileInvalid, wantMsg: "profile_id"},
		{name: "profile_id over 128 characters", edit: func(s *domain.ProfileSpec) { s.ProfileID = strings.Repeat("p", 129) }, wantErr: domain.ErrProfileInvalid, wantMsg: "profile_id"},
		{name: "name over 256 characters", edit: func(s *domain.ProfileSpec) { s.Name = strings.Repeat("n", 257) }, wantErr: domain.ErrProfileInvalid, wantMsg: "name"},
		{name: "negative max token lifetime", edit: func(s *domain.ProfileSpec) { s.MaxTokenLifetimeSeconds = -1 }, wantErr: domain.ErrProfileInvalid, wantMsg: "max_token_lifetime_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := validPEMSpec(t)
			tc.edit(&spec)
			p, err := domain.NewProfile(spec, tc.rules, 1, testNow, testNow)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("NewProfile = %v, want %v", err, tc.wantErr)
			}
			if de := domain.AsError(err); de.Status != 400 || !strings.Contains(de.Message, tc.wantMsg) {
				t.Errorf("error %d %q, want 400 mentioning %q", de.Status, de.Message, tc.wantMsg)
			}
			if p.ProfileID != "" || p.StaticKeys() != nil {
				t.Errorf("NewProfile returned a profile with its error: %+v", p)
			}
		})
	}
}

func TestNewProfileAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		spec     func(t testing.TB) domain.ProfileSpec
		rules    domain.ProfileRules
		wantKeys int
		wantJWKS bool
	}{
		{name: "one PEM", spec: validPEMSpec, wantKeys: 1},
		{
			name: "five PEMs of several key types",
			spec: func(t testing.TB) domain.ProfileSpec {
				s := validPEMSpec(t)
				p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				s.PublicKeys = append(edPEMs(t, 3), pemOf(t, p256.Public()), pemOf(t, rfc7638RSAKey(t)))
				return s
			},
			wantKeys: 5,
		},
		{name: "https jwks_url", spec: validJWKSSpec, wantJWKS: true},
		{
			name: "https jwks_url with a port and query",
			spec: func(t testing.TB) domain.ProfileSpec {
				s := validJWKSSpec(t)
				s.JWKSURL = "https://idp.example.com:8443/keys?tenant=1"
				return s
			},
			wantJWKS: true,
		},
		{
			name: "http jwks_url when the rules allow it",
			spec: func(t testing.TB) domain.ProfileSpec {
				s := validJWKSSpec(t)
				s.JWKSURL = "http://127.0.0.1:8080/jwks.json"
				return s
			},
			rules:    domain.ProfileRules{AllowHTTPJWKS: true},
			wantJWKS: true,
		},
		{
			name: "optional mapping and limits set",
			spec: func(t testing.TB) domain.ProfileSpec {
				s := validPEMSpec(t)
				s.AttributeMapping.ExternalUserID = "sub"
				s.AttributeMapping.RoleIDs = "https://example.com/roles"
				s.MaxTokenLifetimeSeconds = 600
				s.CanJITProvision = true
				s.ProfileID = strings.Repeat("p", 128)
				return s
			},
			wantKeys: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := tc.spec(t)
			created := time.Date(2030, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))
			p, err := domain.NewProfile(spec, tc.rules, 3, created.Add(999*time.Millisecond), created.Add(time.Hour))
			if err != nil {
				t.Fatalf("NewProfile: %v", err)
			}
			if p.ProfileID != spec.ProfileID || p.Issuer != spec.Issuer || p.Version != 3 {
				t.Errorf("profile = %+v", p)
			}
			if p.CreatedAt != created.UTC() || p.UpdatedAt != created.Add(time.Hour).UTC() {
				t.Errorf("times = %v, %v; want whole seconds in UTC from %v", p.CreatedAt, p.UpdatedAt, created)
			}
			if p.UsesJWKS() != tc.wantJWKS {
				t.Errorf("UsesJWKS = %v, want %v", p.UsesJWKS(), tc.wantJWKS)
			}
			keys := p.StaticKeys()
			if len(keys) != tc.wantKeys {
				t.Fatalf("StaticKeys has %d keys, want %d", len(keys), tc.wantKeys)
			}
			if tc.wantJWKS && keys != nil {
				t.Errorf("a JWKS profile has static keys")
			}
			for i, k := range keys {
				want := mustParsePEM(t, spec.PublicKeys[i])
				if k.KID != want.KID || len(k.Algs) == 0 {
					t.Errorf("key %d = %s %v, want %s", i, k.KID, k.Algs, want.KID)
				}
			}
		})
	}
}

func TestProfileJSONCarriesPublicMaterialOnly(t *testing.T) {
	t.Parallel()
	p, err := domain.NewProfile(validPEMSpec(t), domain.ProfileRules{}, 2, testNow, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"profile_id", "name", "issuer", "audience", "public_keys", "attribute_mapping", "can_jit_provision", "version", "created_at", "updated_at"} {
		if _, ok := got[k]; !ok {
			t.Errorf("the profile JSON has no %q: %s", k, b)
		}
	}
	if got["version"] != 2.0 || got["created_at"] != "2030-01-02T03:04:05Z" {
		t.Errorf("version, created_at = %v, %v", got["version"], got["created_at"])
	}
	if strings.Contains(string(b), "PRIVATE") || strings.Contains(string(b), "keys\":[{") {
		t.Errorf("the profile JSON carries more than the public PEMs: %s", b)
	}
}

func TestProfilePolicy(t *testing.T) {
	t.Parallel()
	spec := validPEMSpec(t)
	spec.MaxTokenLifetimeSeconds = 900
	spec.AttributeMapping.RoleIDs = "roles"
	p, err := domain.NewProfile(spec, domain.ProfileRules{}, 1, testNow, testNow)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Policy(45*time.Second, 8192)
	want := domain.TokenPolicy{
		Issuer: spec.Issuer, Audience: spec.Audience, Mapping: spec.AttributeMapping,
		MaxLifetime: 15 * time.Minute, Skew: 45 * time.Second, MaxTokenBytes: 8192,
	}
	if got != want {
		t.Errorf("Policy = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the policy of a valid profile is not valid: %v", err)
	}
	spec.MaxTokenLifetimeSeconds = 0
	p, err = domain.NewProfile(spec, domain.ProfileRules{}, 1, testNow, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if lt := p.Policy(0, 0).MaxLifetime; lt != 0 {
		t.Errorf("MaxLifetime without a limit = %v, want 0", lt)
	}
}

// TestProfileStaticKeysVerify: a token signed by one of a profile's PEM keys
// verifies against StaticKeys and the profile's Policy.
func TestProfileStaticKeysVerify(t *testing.T) {
	t.Parallel()
	ks := newKeyset(t)
	spec := validPEMSpec(t)
	spec.Issuer, spec.Audience = testIssuer, testAudience
	spec.PublicKeys = []string{edPEM(t, 9), pemOf(t, ks.ed.priv.Public())}
	p, err := domain.NewProfile(spec, domain.ProfileRules{}, 1, testNow, testNow)
	if err != nil {
		t.Fatal(err)
	}
	raw := build(t, ks.ed, tok{})
	vt, err := domain.VerifyToken(raw, p.Policy(time.Minute, 0), p.StaticKeys(), testNow)
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if vt.KID != p.StaticKeys()[1].KID {
		t.Errorf("verified by %s, want the second key", vt.KID)
	}
}

// rfc7638RSAKey is the 2048-bit RSA public key of RFC 7638 section 3.1: a
// real key with no generation cost.
func rfc7638RSAKey(t testing.TB) *rsa.PublicKey {
	t.Helper()
	n := mustB64(t, "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
}

// TestNewProfileAcceptsEachLimitExactly: every length limit of a profile
// admits a value of exactly that length (the refusals above are one over),
// a max token lifetime of zero (no limit) is valid, and so are exactly
// MaxPEMKeys keys.
func TestNewProfileAcceptsEachLimitExactly(t *testing.T) {
	t.Parallel()
	jwksOf := func(n int) string { // an https URL of exactly n characters
		base := "https://idp.example.com/"
		return base + strings.Repeat("a", n-len(base))
	}
	for _, tc := range []struct {
		name string
		edit func(s *domain.ProfileSpec)
	}{
		{"name of 256 characters", func(s *domain.ProfileSpec) { s.Name = strings.Repeat("n", 256) }},
		{"issuer of 2048 characters", func(s *domain.ProfileSpec) { s.Issuer = strings.Repeat("i", 2048) }},
		{"audience of 2048 characters", func(s *domain.ProfileSpec) { s.Audience = strings.Repeat("a", 2048) }},
		{"email claim of 256 characters", func(s *domain.ProfileSpec) { s.AttributeMapping.Email = strings.Repeat("e", 256) }},
		{"token id claim of 256 characters", func(s *domain.ProfileSpec) { s.AttributeMapping.TokenID = strings.Repeat("j", 256) }},
		{"external user id claim of 256 characters", func(s *domain.ProfileSpec) { s.AttributeMapping.ExternalUserID = strings.Repeat("x", 256) }},
		{"role ids claim of 256 characters", func(s *domain.ProfileSpec) { s.AttributeMapping.RoleIDs = strings.Repeat("r", 256) }},
		{"max token lifetime of zero", func(s *domain.ProfileSpec) { s.MaxTokenLifetimeSeconds = 0 }},
		{"MaxPEMKeys public keys", func(s *domain.ProfileSpec) { s.PublicKeys = edPEMs(t, domain.MaxPEMKeys) }},
		{"jwks_url of 2048 characters", func(s *domain.ProfileSpec) { s.PublicKeys, s.JWKSURL = nil, jwksOf(2048) }},
	} {
		spec := validPEMSpec(t)
		tc.edit(&spec)
		if _, err := domain.NewProfile(spec, domain.ProfileRules{}, 1, time.Now(), time.Now()); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		name, wantMsg string
		edit          func(s *domain.ProfileSpec)
	}{
		{"audience of 2049 characters", "audience", func(s *domain.ProfileSpec) { s.Audience = strings.Repeat("a", 2049) }},
		{"email claim of 257 characters", "attribute_mapping.email", func(s *domain.ProfileSpec) { s.AttributeMapping.Email = strings.Repeat("e", 257) }},
		{"jwks_url of 2049 characters", "jwks_url", func(s *domain.ProfileSpec) { s.PublicKeys, s.JWKSURL = nil, jwksOf(2049) }},
	} {
		spec := validPEMSpec(t)
		tc.edit(&spec)
		_, err := domain.NewProfile(spec, domain.ProfileRules{}, 1, time.Now(), time.Now())
		if !errors.Is(err, domain.ErrProfileInvalid) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("%s: %v, want trusted_token_profile_invalid_request naming %s", tc.name, err, tc.wantMsg)
		}
	}
}
