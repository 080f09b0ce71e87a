package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

const (
	testIss = "https://idp.example.com/"
	testAud = "my-app"
)

func testPolicy() domain.TokenPolicy {
	return domain.TokenPolicy{
		Issuer: testIss, Audience: testAud,
		Mapping: domain.AttributeMapping{Email: "email", TokenID: "jti", RoleIDs: "roles"},
		Skew:    time.Minute,
	}
}

// profileKey reads the public half written by keygen as a profile would.
func profileKey(t *testing.T, base string) domain.PublicKey {
	t.Helper()
	pubPEM, err := os.ReadFile(base + ".pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := domain.ParsePEMPublicKey(string(pubPEM))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// mint runs "token mint" and returns the token.
func mint(t *testing.T, base string, extra ...string) string {
	t.Helper()
	args := append([]string{"token", "mint", "-key", base + ".key.pem", "-iss", testIss, "-aud", testAud,
		"-email", "ada@example.com"}, extra...)
	code, stdout, stderr := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("token mint %v: exit %d\n%s", extra, code, stderr)
	}
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("token mint printed %q, want one line", stdout)
	}
	return strings.TrimSpace(stdout)
}

func TestTokenMintVerifies(t *testing.T) {
	cases := []struct {
		name string
		args []string
		alg  string
	}{
		{"EC P-256", nil, "ES256"},
		{"EC P-384", []string{"-curve", "P-384"}, "ES384"},
		{"EC P-521", []string{"-curve", "P-521"}, "ES512"},
		{"RSA", []string{"-type", "rsa"}, "RS256"},
		{"Ed25519", []string{"-type", "ed25519"}, "EdDSA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := keygen(t, tc.args...)
			pub := profileKey(t, base)
			raw := mint(t, base, "-jti", "tok-1", "-roles", "admin, viewer", "-claim", "plan=pro", "-claim", "seats:=3")

			vt, err := domain.VerifyToken(raw, testPolicy(), []domain.PublicKey{pub}, time.Now())
			if err != nil {
				t.Fatalf("VerifyToken: %v", err)
			}
			if vt.Alg != tc.alg || vt.Email != "ada@example.com" || vt.TokenID != "tok-1" ||
				vt.Subject != "ada@example.com" || vt.Issuer != testIss {
				t.Errorf("verified %+v", vt)
			}
			if !slices.Equal(vt.RoleIDs, []string{"admin", "viewer"}) {
				t.Errorf("roles %v", vt.RoleIDs)
			}
			if vt.Claims["plan"] != "pro" || vt.Claims["seats"] != json.Number("3") {
				t.Errorf("extra claims %v %v", vt.Claims["plan"], vt.Claims["seats"])
			}
			if d := vt.ExpiresAt.Sub(vt.IssuedAt); d != 5*time.Minute {
				t.Errorf("exp - iat = %v, want the default ttl of 5m", d)
			}
			if vt.NotBefore.IsZero() {
				t.Error("no nbf")
			}

			// The kid keygen prints is the profile key's KID; a wrong one is refused.
			if _, err := domain.VerifyToken(mint(t, base, "-kid", pub.KID), testPolicy(), []domain.PublicKey{pub}, time.Now()); err != nil {
				t.Errorf("with -kid %s: %v", pub.KID, err)
			}
			_, err = domain.VerifyToken(mint(t, base, "-kid", "other"), testPolicy(), []domain.PublicKey{pub}, time.Now())
			if !errors.Is(err, domain.ErrInvalidToken) {
				t.Errorf("with a wrong kid: %v, want invalid_trusted_auth_token", err)
			}
		})
	}
}

func TestTokenMintHeaderAndDefaults(t *testing.T) {
	base := keygen(t)
	raw := mint(t, base, "-kid", "k1")
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	var hdr map[string]string
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr["alg"] != "ES256" || hdr["typ"] != "JWT" || hdr["kid"] != "k1" {
		t.Errorf("header %v", hdr)
	}
	var claims map[string]any
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(pb, &claims); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"iss", "aud", "sub", "email", "jti", "iat", "nbf", "exp"} {
		if _, ok := claims[name]; !ok {
			t.Errorf("claim %s missing", name)
		}
	}
	if _, ok := claims["roles"]; ok {
		t.Error("roles set without -roles")
	}
	// The default jti is random: two tokens never share it.
	other := strings.Split(mint(t, base), ".")[1]
	var claims2 map[string]any
	pb2, _ := base64.RawURLEncoding.DecodeString(other)
	_ = json.Unmarshal(pb2, &claims2)
	if claims["jti"] == claims2["jti"] || !domain.ValidCommandID(claims["jti"].(string)) {
		t.Errorf("jti %v then %v", claims["jti"], claims2["jti"])
	}
	// Without -kid there is no kid header.
	hb3, _ := base64.RawURLEncoding.DecodeString(strings.Split(mint(t, base), ".")[0])
	if strings.Contains(string(hb3), "kid") {
		t.Errorf("header %s has a kid", hb3)
	}
}

func TestTokenMintOptions(t *testing.T) {
	rsaBase := keygen(t, "-type", "rsa")
	rsaKey := profileKey(t, rsaBase)
	for _, alg := range []string{"PS256", "PS384", "RS512"} {
		vt, err := domain.VerifyToken(mint(t, rsaBase, "-alg", alg), testPolicy(), []domain.PublicKey{rsaKey}, time.Now())
		if err != nil || vt.Alg != alg {
			t.Errorf("-alg %s: %v", alg, err)
		}
	}
	if code, _, _ := runCLI(t, "token", "mint", "-key", rsaBase+".key.pem", "-iss", "i", "-aud", "a", "-email", "e@x.io", "-alg", "ES256"); code != exitUsage {
		t.Errorf("-alg ES256 with an RSA key: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "token", "mint", "-key", rsaBase+".key.pem", "-iss", "i", "-aud", "a", "-email", "e@x.io", "-alg", "HS256"); code != exitUsage {
		t.Errorf("-alg HS256: exit %d, want 2", code)
	}

	base := keygen(t, "-type", "ed25519")
	key := profileKey(t, base)
	now := time.Now()
	_, err := domain.VerifyToken(mint(t, base, "-ttl", "-10m"), testPolicy(), []domain.PublicKey{key}, now)
	if !errors.Is(err, domain.ErrExpired) {
		t.Errorf("-ttl -10m: %v, want jwt_expired", err)
	}
	vt, err := domain.VerifyToken(mint(t, base, "-ttl", "1h"), testPolicy(), []domain.PublicKey{key}, now)
	if err != nil || vt.ExpiresAt.Sub(vt.IssuedAt) != time.Hour {
		t.Errorf("-ttl 1h: %v", err)
	}
	// -claim is applied last, so it can break a token on purpose.
	_, err = domain.VerifyToken(mint(t, base, "-claim", "iss=https://evil.example/"), testPolicy(), []domain.PublicKey{key}, now)
	if !errors.Is(err, domain.ErrInvalidIssuer) {
		t.Errorf("-claim iss=...: %v, want jwt_invalid_issuer", err)
	}
	_, err = domain.VerifyToken(mint(t, base, "-claim", `aud:=["other","my-app"]`), testPolicy(), []domain.PublicKey{key}, now)
	if err != nil {
		t.Errorf("-claim aud:=[...]: %v", err)
	}
	// Signed by another key: refused.
	other := keygen(t, "-type", "ed25519")
	_, err = domain.VerifyToken(mint(t, other), testPolicy(), []domain.PublicKey{key}, now)
	if !errors.Is(err, domain.ErrInvalidToken) {
		t.Errorf("signed by another key: %v, want invalid_trusted_auth_token", err)
	}

	if code, _, stderr := runCLI(t, "token", "mint", "-key", base+".pub.pem", "-iss", "i", "-aud", "a", "-email", "e@x.io"); code != exitFailure || !strings.Contains(stderr, "public key") {
		t.Errorf("-key with a public key: exit %d, %q", code, stderr)
	}
}

func TestClaimFlags(t *testing.T) {
	var f claimFlags
	for _, s := range []string{"a=b", "eq=x=y", "empty=", "n:=1.5", `o:={"k":[1]}`, "s:=\"q\""} {
		if err := f.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	got := map[string]any{}
	for _, c := range f {
		got[c.name] = c.value
	}
	b, _ := json.Marshal(got)
	if want := `{"a":"b","empty":"","eq":"x=y","n":1.5,"o":{"k":[1]},"s":"q"}`; string(b) != want {
		t.Errorf("claims %s, want %s", b, want)
	}
	for _, bad := range []string{"novalue", "=x", ":=1", "n:=nope"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
