package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/tat-worker/attest/domain"
)

// spoofs returns the forms of a reserved name that a lenient decoder (or a
// person reading a token) could take for it: case variants, compatibility
// forms, look-alike letters and invisible or combining additions.
func spoofs(name string) map[string]string {
	upper := strings.ToUpper(name)
	mixed := []rune(name)
	for i := range mixed {
		if i%2 == 0 {
			mixed[i] = unicode.ToUpper(mixed[i])
		}
	}
	fullwidth := strings.Map(func(r rune) rune {
		if r >= '!' && r <= '~' {
			return r - '!' + '！' // U+FF01 FULLWIDTH EXCLAMATION MARK onwards
		}
		return r
	}, name)
	out := map[string]string{
		"lower":                          name,
		"upper":                          upper,
		"mixed case":                     string(mixed),
		"fullwidth":                      fullwidth,
		"fullwidth upper":                strings.ToUpper(fullwidth),
		"combining acute after first":    name[:1] + "\u0301" + name[1:],
		"combining dot below at end":     name + "\u0323",
		"zero width joiner inside":       name[:1] + "\u200d" + name[1:],
		"soft hyphen inside":             name[:1] + "\u00ad" + name[1:],
		"capital I with dot (U+0130)":    strings.ReplaceAll(name, "i", "\u0130"),
		"dotless i (U+0131)":             strings.ReplaceAll(name, "i", "\u0131"),
		"long s (U+017F)":                strings.ReplaceAll(name, "s", "\u017f"),
		"mathematical bold first (NFKC)": string(rune(0x1d41a+int(name[0]-'a'))) + name[1:], // U+1D41A MATHEMATICAL BOLD SMALL A onwards
	}
	return out
}

// TestCustomClaimNamesRefusedUnderFolding: every reserved name, in every
// spoofed form, is refused as a custom claim.
func TestCustomClaimNamesRefusedUnderFolding(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "tat_session"} {
		for form, spoof := range spoofs(name) {
			t.Run(name+"/"+form, func(t *testing.T) {
				t.Parallel()
				if !domain.ReservedClaimName(spoof) {
					t.Errorf("ReservedClaimName(%q) = false", spoof)
				}
				raw, _ := json.Marshal(map[string]any{"plan": "pro", spoof: map[string]any{"session_id": "session-victim"}})
				_, err := domain.ParseCustomClaims(raw)
				if !errors.Is(err, domain.ErrReservedClaims) {
					t.Fatalf("ParseCustomClaims(%q) = %v, want reserved_claims_in_custom_claims", spoof, err)
				}
				if e := domain.AsError(err); e.Status != 400 {
					t.Errorf("status = %d, want 400", e.Status)
				}
			})
		}
	}
}

// TestCustomClaimNamesAllowed: names that only resemble reserved ones
// without folding onto them stay usable, Kelvin-sign names included.
func TestCustomClaimNamesAllowed(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"plan", "issuer", "subject", "tat_session_id", "tat", "session", "is", "jtis", "x_iss",
		"\u212aey",    // KELVIN SIGN + "ey": folds to "key", not reserved
		"\u017fcope",  // long s: folds to "scope"
		"ext", "ｐｌａｎ", // fullwidth, not reserved
		"", "ïss_x",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if domain.ReservedClaimName(name) {
				t.Fatalf("ReservedClaimName(%q) = true", name)
			}
			raw, _ := json.Marshal(map[string]any{name: "v"})
			if _, err := domain.ParseCustomClaims(raw); err != nil {
				t.Fatalf("ParseCustomClaims(%q): %v", name, err)
			}
		})
	}
}

// TestCustomClaimNameRefusalQuotesLittle: the message names the claim, cut
// short, so a long name cannot fill an event with attacker text.
func TestCustomClaimNameRefusalQuotesLittle(t *testing.T) {
	t.Parallel()
	name := "ISS" + strings.Repeat("\u200b", 200)
	raw, _ := json.Marshal(map[string]any{name: 1})
	_, err := domain.ParseCustomClaims(raw)
	if !errors.Is(err, domain.ErrReservedClaims) {
		t.Fatalf("err = %v", err)
	}
	if msg := domain.AsError(err).Message; len(msg) > 200 {
		t.Errorf("message is %d bytes: %q", len(msg), msg)
	}
}

// TestCustomClaimsRefuseRepeatedMembers: a custom claim sent twice (at any
// depth) is refused, not resolved last-wins as encoding/json would.
func TestCustomClaimsRefuseRepeatedMembers(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"plan":"free","plan":"pro"}`,
		`{"ext":{"a":1,"a":2}}`,
		`{"plan":"free","pl\u0061n":"pro"}`,
		`{"a":1} {"b":2}`,
		`["plan"]`,
	} {
		_, err := domain.ParseCustomClaims(json.RawMessage(raw))
		if !errors.Is(err, domain.ErrInvalidRequest) {
			t.Errorf("ParseCustomClaims(%s) = %v, want invalid_request", raw, err)
		}
	}
	m, err := domain.ParseCustomClaims(json.RawMessage(`{"plan":"pro","Plan":"x","n":1.5,"gone":null}`))
	if err != nil || m["plan"] != "pro" || m["Plan"] != "x" || m["n"] != json.Number("1.5") {
		t.Fatalf("ParseCustomClaims = %v, %v", m, err)
	}
	if v, ok := m["gone"]; !ok || v != nil {
		t.Errorf("a null claim must be kept as nil (it deletes on merge): %v %v", v, ok)
	}
}
