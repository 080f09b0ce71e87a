package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

func validUserSpec() domain.UserSpec {
	return domain.UserSpec{
		UserID: domain.UserIDPrefix + "1",
		Emails: []domain.UserEmail{{Email: "Ada@Example.com", Verified: true}},
		Name:   domain.UserName{FirstName: "Ada", LastName: "Lovelace"},
		Status: domain.UserActive,
	}
}

func emails(list ...string) []domain.UserEmail {
	out := make([]domain.UserEmail, len(list))
	for i, e := range list {
		out[i] = domain.UserEmail{Email: e}
	}
	return out
}

func TestNewUserRefuses(t *testing.T) {
	t.Parallel()
	many := make([]string, domain.MaxUserEmails+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d@example.com", i)
	}
	for _, tc := range []struct {
		name    string
		edit    func(s *domain.UserSpec)
		wantMsg string
	}{
		{name: "missing user_id", edit: func(s *domain.UserSpec) { s.UserID = "" }, wantMsg: "user_id"},
		{name: "user_id with a space", edit: func(s *domain.UserSpec) { s.UserID = "user 1" }, wantMsg: "user_id"},
		{name: "user_id over 128 characters", edit: func(s *domain.UserSpec) { s.UserID = strings.Repeat("u", 129) }, wantMsg: "user_id"},
		{name: "email without @", edit: func(s *domain.UserSpec) { s.Emails = emails("ada.example.com") }, wantMsg: "emails[0]"},
		{name: "empty email", edit: func(s *domain.UserSpec) { s.Emails = emails("") }, wantMsg: "emails[0]"},
		{name: "blank email", edit: func(s *domain.UserSpec) { s.Emails = emails("   ") }, wantMsg: "emails[0]"},
		{name: "email with a display name", edit: func(s *domain.UserSpec) { s.Emails = emails("Ada <ada@example.com>") }, wantMsg: "emails[0]"},
		{name: "email in angle brackets", edit: func(s *domain.UserSpec) { s.Emails = emails("<ada@example.com>") }, wantMsg: "emails[0]"},
		{name: "two addresses in one", edit: func(s *domain.UserSpec) { s.Emails = emails("ada@example.com, bob@example.com") }, wantMsg: "emails[0]"},
		{name: "bad second email", edit: func(s *domain.UserSpec) { s.Emails = emails("ada@example.com", "bob@") }, wantMsg: "emails[1]"},
		{name: "email with the Kelvin sign", edit: func(s *domain.UserSpec) { s.Emails = emails("\u212Aim@example.com") }, wantMsg: "emails[0] is not a valid email"},
		{name: "email with U+0130", edit: func(s *domain.UserSpec) { s.Emails = emails("K\u0130M@example.com") }, wantMsg: "emails[0] is not a valid email"},
		{name: "email ending in a no-break space", edit: func(s *domain.UserSpec) { s.Emails = emails("kim@example.com\u00A0") }, wantMsg: "emails[0] is not a valid email"},
		{name: "email in NFD", edit: func(s *domain.UserSpec) { s.Emails = emails("jose\u0301@example.com") }, wantMsg: "emails[0] is not a valid email"},
		{
			name:    "Kelvin-sign twin of the user's other address",
			edit:    func(s *domain.UserSpec) { s.Emails = emails("kim@example.com", "\u212Aim@example.com") },
			wantMsg: "emails[1] is not a valid email",
		},
		{
			name: "email over 254 characters",
			edit: func(s *domain.UserSpec) {
				s.Emails = emails(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com")
			},
			wantMsg: "emails[0]",
		},
		{name: "duplicate email differing in case", edit: func(s *domain.UserSpec) { s.Emails = emails("Ada@Example.com", "ada@example.COM") }, wantMsg: "emails[1] repeats"},
		{name: "duplicate email differing in spaces", edit: func(s *domain.UserSpec) { s.Emails = emails("ada@example.com", " ada@example.com ") }, wantMsg: "emails[1] repeats"},
		{name: "more than 10 emails", edit: func(s *domain.UserSpec) { s.Emails = emails(many...) }, wantMsg: "at most 10"},
		{name: "unknown status", edit: func(s *domain.UserSpec) { s.Status = "banned" }, wantMsg: "status"},
		{name: "status in another case", edit: func(s *domain.UserSpec) { s.Status = "Active" }, wantMsg: "status"},
		{name: "first name over 256 characters", edit: func(s *domain.UserSpec) { s.Name.FirstName = strings.Repeat("a", 257) }, wantMsg: "first_name"},
		{name: "external_id over 256 characters", edit: func(s *domain.UserSpec) { s.ExternalID = strings.Repeat("x", 257) }, wantMsg: "external_id"},
		{name: "trusted_metadata array", edit: func(s *domain.UserSpec) { s.TrustedMetadata = json.RawMessage(`[1,2]`) }, wantMsg: "trusted_metadata"},
		{name: "trusted_metadata string", edit: func(s *domain.UserSpec) { s.TrustedMetadata = json.RawMessage(`"x"`) }, wantMsg: "trusted_metadata"},
		{name: "trusted_metadata null", edit: func(s *domain.UserSpec) { s.TrustedMetadata = json.RawMessage(`null`) }, wantMsg: "trusted_metadata"},
		{name: "trusted_metadata not JSON", edit: func(s *domain.UserSpec) { s.TrustedMetadata = json.RawMessage(`{"a":`) }, wantMsg: "trusted_metadata"},
		{
			name: "trusted_metadata over 16 KiB",
			edit: func(s *domain.UserSpec) {
				s.TrustedMetadata = json.RawMessage(`{"k":"` + strings.Repeat("x", 16<<10) + `"}`)
			},
			wantMsg: "16 KiB",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := validUserSpec()
			tc.edit(&spec)
			u, err := domain.NewUser(spec, 1, testNow, testNow)
			if !errors.Is(err, domain.ErrInvalidUser) {
				t.Fatalf("NewUser = %v, want invalid_user", err)
			}
			if de := domain.AsError(err); de.Code != "invalid_user" || de.Status != 400 || !strings.Contains(de.Message, tc.wantMsg) {
				t.Errorf("error %s %d %q, want invalid_user 400 mentioning %q", de.Code, de.Status, de.Message, tc.wantMsg)
			}
			if u.UserID != "" {
				t.Errorf("NewUser returned a user with its error: %+v", u)
			}
		})
	}
}

func TestNewUserAccepts(t *testing.T) {
	t.Parallel()
	ten := make([]string, domain.MaxUserEmails)
	for i := range ten {
		ten[i] = fmt.Sprintf("u%d@example.com", i)
	}
	for _, tc := range []struct {
		name         string
		edit         func(s *domain.UserSpec)
		wantStatus   string
		wantEmails   []string // as stored
		wantNorm     []string // as matched
		wantMetadata string
	}{
		{
			name: "default status is active", edit: func(s *domain.UserSpec) { s.Status = "" },
			wantStatus: domain.UserActive, wantEmails: []string{"Ada@Example.com"}, wantNorm: []string{"ada@example.com"}, wantMetadata: `{}`,
		},
		{name: "pending", edit: func(s *domain.UserSpec) { s.Status = domain.UserPending }, wantStatus: domain.UserPending},
		{name: "disabled", edit: func(s *domain.UserSpec) { s.Status = domain.UserDisabled }, wantStatus: domain.UserDisabled},
		{
			name:       "emails are trimmed but keep their case",
			edit:       func(s *domain.UserSpec) { s.Emails = emails("  Ada@Example.com\t", "ada@work.example") },
			wantStatus: domain.UserActive, wantEmails: []string{"Ada@Example.com", "ada@work.example"},
			wantNorm: []string{"ada@example.com", "ada@work.example"},
		},
		{name: "ten emails", edit: func(s *domain.UserSpec) { s.Emails = emails(ten...) }, wantStatus: domain.UserActive, wantNorm: ten},
		{
			name: "non-ASCII addresses match themselves",
			edit: func(s *domain.UserSpec) {
				s.Emails = emails("Jos\u00E9@Example.com", "ada@b\u00FCcher.example", "\u7528\u6237@\u4F8B\u5B50.\u5E7F\u544A")
			},
			wantStatus: domain.UserActive,
			wantEmails: []string{"Jos\u00E9@Example.com", "ada@b\u00FCcher.example", "\u7528\u6237@\u4F8B\u5B50.\u5E7F\u544A"},
			wantNorm:   []string{"jos\u00E9@example.com", "ada@b\u00FCcher.example", "\u7528\u6237@\u4F8B\u5B50.\u5E7F\u544A"},
		},
		{
			name:       "addresses differing in a non-ASCII case are two addresses",
			edit:       func(s *domain.UserSpec) { s.Emails = emails("jos\u00E9@example.com", "JOS\u00C9@example.com") },
			wantStatus: domain.UserActive,
			wantNorm:   []string{"jos\u00E9@example.com", "jos\u00C9@example.com"},
		},
		{name: "no email", edit: func(s *domain.UserSpec) { s.Emails = nil }, wantStatus: domain.UserActive, wantNorm: []string{}},
		{
			name: "trusted_metadata is compacted",
			edit: func(s *domain.UserSpec) {
				s.TrustedMetadata = json.RawMessage("{ \"tier\" : \"gold\",\n \"n\": [1, 2] }")
			},
			wantStatus: domain.UserActive, wantMetadata: `{"tier":"gold","n":[1,2]}`,
		},
		{name: "empty trusted_metadata object", edit: func(s *domain.UserSpec) { s.TrustedMetadata = json.RawMessage(`{}`) }, wantStatus: domain.UserActive, wantMetadata: `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := validUserSpec()
			tc.edit(&spec)
			loc := time.FixedZone("PST", -8*3600)
			u, err := domain.NewUser(spec, 4, testNow.Add(999*time.Millisecond).In(loc), testNow.Add(time.Minute).In(loc))
			if err != nil {
				t.Fatalf("NewUser: %v", err)
			}
			if u.Status != tc.wantStatus || u.Active() != (tc.wantStatus == domain.UserActive) {
				t.Errorf("Status, Active = %q, %v; want %q", u.Status, u.Active(), tc.wantStatus)
			}
			if u.Version != 4 || u.CreatedAt != testNow || u.UpdatedAt != testNow.Add(time.Minute) {
				t.Errorf("Version, CreatedAt, UpdatedAt = %d, %v, %v; want whole seconds in UTC", u.Version, u.CreatedAt, u.UpdatedAt)
			}
			if tc.wantEmails != nil {
				var got []string
				for _, e := range u.Emails {
					got = append(got, e.Email)
				}
				if strings.Join(got, ",") != strings.Join(tc.wantEmails, ",") {
					t.Errorf("Emails = %q, want %q", got, tc.wantEmails)
				}
			}
			if tc.wantNorm != nil {
				if got := u.NormalizedEmails(); strings.Join(got, ",") != strings.Join(tc.wantNorm, ",") || got == nil {
					t.Errorf("NormalizedEmails = %#v, want %q", got, tc.wantNorm)
				}
			}
			if tc.wantMetadata != "" && string(u.TrustedMetadata) != tc.wantMetadata {
				t.Errorf("TrustedMetadata = %s, want %s", u.TrustedMetadata, tc.wantMetadata)
			}
		})
	}
}

func TestNewUserKeepsVerifiedFlags(t *testing.T) {
	t.Parallel()
	spec := validUserSpec()
	spec.Emails = []domain.UserEmail{{Email: "a@example.com", Verified: true}, {Email: "b@example.com"}}
	u, err := domain.NewUser(spec, 1, testNow, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Emails[0].Verified || u.Emails[1].Verified {
		t.Errorf("Emails = %+v", u.Emails)
	}
	spec.Emails[0].Email = "changed@example.com"
	if u.Emails[0].Email != "a@example.com" {
		t.Errorf("the user shares its emails with the spec")
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "ada@example.com", want: "ada@example.com"},
		{in: "Ada@Example.COM", want: "ada@example.com"},
		{in: "  ada@example.com\n", want: "ada@example.com"},
		{in: "ada+tag@sub.example.co.uk", want: "ada+tag@sub.example.co.uk"},
		{in: "ÄDA@example.com", want: "Äda@example.com"}, // only A-Z are lowered
		{in: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", want: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com"},
		{in: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", wantErr: true},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "ada", wantErr: true},
		{in: "ada@", wantErr: true},
		{in: "@example.com", wantErr: true},
		{in: "Ada <ada@example.com>", wantErr: true},
		{in: "<ada@example.com>", wantErr: true},
		{in: "ada@example.com (Ada)", wantErr: true},
		{in: "ada@example.com, bob@example.com", wantErr: true},
		{in: "ada@exa mple.com", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeEmail(tc.in)
			if tc.wantErr {
				if !errors.Is(err, domain.ErrInvalidRequest) {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want invalid_request", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestNormalizeEmailUnicode pins the one normalization behind email
// matching and JIT user ids: A-Z lowered, every other byte kept, and an
// address whose Unicode spelling is ambiguous refused.
func TestNormalizeEmailUnicode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     string // the key; "" when the address is refused
	}{
		// Accepted: only ASCII letters change.
		{name: "mixed-case ASCII", in: "KiM@ExAmple.COM", want: "kim@example.com"},
		{name: "A and Z, the ends of the ASCII capitals", in: "AZ@ZA.EXAMPLE", want: "az@za.example"},
		{name: "A with macron (a byte 0x80 in its UTF-8)", in: "\u0100da@example.com", want: "\u0100da@example.com"},
		{name: "precomposed e acute (NFC)", in: "Jos\u00E9@example.com", want: "jos\u00E9@example.com"},
		{name: "non-ASCII capital kept", in: "JOS\u00C9@example.com", want: "jos\u00C9@example.com"},
		{name: "precomposed k with acute", in: "\u1E31im@example.com", want: "\u1E31im@example.com"},
		{name: "IDN domain in Unicode", in: "Kim@B\u00FCcher.example", want: "kim@b\u00FCcher.example"},
		{name: "IDN domain in punycode", in: "Kim@XN--bcher-kva.example", want: "kim@xn--bcher-kva.example"},
		{name: "Cyrillic i look-alike", in: "k\u0456m@example.com", want: "k\u0456m@example.com"},
		{name: "Greek kappa look-alike", in: "\u039Aim@example.com", want: "\u039Aim@example.com"},
		{name: "sharp s", in: "ki\u00DF@example.com", want: "ki\u00DF@example.com"},
		{name: "capital sharp s", in: "KI\u1E9E@example.com", want: "ki\u1E9E@example.com"},
		{name: "Han", in: "\u7528\u6237@\u4F8B\u5B50.\u5E7F\u544A", want: "\u7528\u6237@\u4F8B\u5B50.\u5E7F\u544A"},

		// Refused: a non-ASCII character Unicode ties to ASCII.
		{name: "Kelvin sign", in: "\u212Aim@example.com"},
		{name: "Kelvin sign in the domain", in: "kim@example.\u212Aom"},
		{name: "capital I with dot above (U+0130)", in: "K\u0130M@example.com"},
		{name: "dotless i (U+0131)", in: "k\u0131m@example.com"},
		{name: "long s (U+017F)", in: "\u017Fam@example.com"},
		{name: "fullwidth capital K", in: "\uFF2Bim@example.com"},
		{name: "fullwidth small k", in: "\uFF4Bim@example.com"},
		{name: "fullwidth commercial at", in: "kim\uFF20example.com"},
		{name: "fullwidth full stop", in: "kim@example\uFF0Ecom"},
		{name: "ligature fi", in: "\uFB01@example.com"},
		{name: "superscript two", in: "kim\u00B2@example.com"},
		{name: "feminine ordinal", in: "\u00AA@example.com"},
		{name: "mathematical bold small k", in: "\U0001D424im@example.com"},
		{name: "circled capital K", in: "\u24C0im@example.com"},
		{name: "Angstrom sign", in: "\u212Bsa@example.com"},
		{name: "Ohm sign", in: "\u2126@example.com"},

		// Refused: not NFC, as given or once A-Z are lowered.
		{name: "k and combining acute (NFD of U+1E31)", in: "k\u0301im@example.com"},
		{name: "e and combining acute (NFD of e acute)", in: "jose\u0301@example.com"},
		{name: "H and macron below, whose key composes", in: "H\u0331@example.com"},

		// Refused: spaces, invisible and control characters, IDNA full stops.
		{name: "trailing no-break space", in: "kim@example.com\u00A0"},
		{name: "leading ideographic space", in: "\u3000kim@example.com"},
		{name: "trailing next line (U+0085)", in: "kim@example.com\u0085"},
		{name: "zero-width space", in: "ki\u200Bm@example.com"},
		{name: "soft hyphen", in: "ki\u00ADm@example.com"},
		{name: "right-to-left override", in: "\u202Ekim@example.com"},
		{name: "private use", in: "ki\uE000m@example.com"},
		{name: "unassigned", in: "ki\u0378m@example.com"},
		{name: "replacement character", in: "ki\uFFFDm@example.com"},
		{name: "ideographic full stop", in: "kim@example\u3002com"},
		{name: "halfwidth ideographic full stop", in: "kim@example\uFF61com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeEmail(tc.in)
			if tc.want == "" {
				if !errors.Is(err, domain.ErrInvalidRequest) || got != "" {
					t.Fatalf("NormalizeEmail(%+q) = %+q, %v; want invalid_request", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeEmail(%+q) = %+q, %v; want %+q", tc.in, got, err, tc.want)
			}
			if again, err := domain.NormalizeEmail(got); err != nil || again != got {
				t.Errorf("NormalizeEmail(key %+q) = %+q, %v; a key must be its own key", got, again, err)
			}
		})
	}
}

// TestEmailLookAlikesNeverMatch plays the attacker: a token (or a user
// upsert) names an address that an issuer may hold as another account but
// that looks like the victim's. Each is refused or gets a key and a JIT user
// id of its own, never the victim's.
func TestEmailLookAlikesNeverMatch(t *testing.T) {
	t.Parallel()
	for victim, lookAlikes := range map[string][]string{
		"kim@example.com": {
			"\u212Aim@example.com", "\u212AIM@EXAMPLE.COM", "K\u0130M@example.com", "k\u0131m@example.com",
			"\uFF2Bim@example.com", "\uFF4Bim@example.com", "\U0001D424im@example.com", "\u24C0im@example.com",
			"k\u0456m@example.com", "\u03BAim@example.com", "k\u0301im@example.com", "\u1E31im@example.com",
			"kim@example.com\u00A0", "\u00A0kim@example.com", "\u3000kim@example.com", "kim@example.com\u0085",
			"kim@example.com\u2028", "ki\u200Bm@example.com", "ki\u00ADm@example.com", "kim\u200D@example.com",
			"kim@example\u3002com", "kim@example\uFF0Ecom", "kim@example\uFF61com", "kim@\uFF45xample.com",
			"kim@example.\u212Aom", "\"kim\"@example.com", "kim@example.com.",
		},
		"sam@example.com": {"\u017Fam@example.com", "\u017FAM@example.com"},
		"jos\u00E9@example.com": {
			"jose\u0301@example.com", "JOSE\u0301@example.com", "JOS\u00C9@example.com", "jos\u00E9@example.com\u00A0",
			"jos\u00E9@example\u3002com", "jos\u00E9\u200B@example.com",
		},
		"ada@b\u00FCcher.example": {"ada@bu\u0308cher.example", "ada@b\uFF55\u0308cher.example", "ada@b\u00FCcher\uFF0Eexample"},
	} {
		key, err := domain.NormalizeEmail(victim)
		if err != nil {
			t.Fatalf("NormalizeEmail(%+q): %v", victim, err)
		}
		for _, a := range lookAlikes {
			if got, err := domain.NormalizeEmail(a); err == nil && got == key {
				t.Errorf("NormalizeEmail(%+q) = %+q, the key of %+q", a, got, victim)
			}
			u, err := domain.NewJITUser(a, "", testNow)
			if err != nil && !errors.Is(err, domain.ErrInvalidClaims) {
				t.Errorf("NewJITUser(%+q) = %v, want jwt_invalid_claims or another user", a, err)
			}
			if err == nil && u.UserID == domain.JITUserID(key) {
				t.Errorf("NewJITUser(%+q) provisions %s, the JIT user of %+q", a, u.UserID, victim)
			}
		}
	}
}

// TestJITUserIDLookAlikes: ASCII case folds to one JIT user; the Kelvin
// sign and U+0130 never provision (nor name) that user.
func TestJITUserIDLookAlikes(t *testing.T) {
	t.Parallel()
	lower, err := domain.NormalizeEmail("kim@example.com")
	if err != nil {
		t.Fatal(err)
	}
	upper, err := domain.NormalizeEmail("KIM@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if domain.JITUserID(upper) != domain.JITUserID(lower) {
		t.Errorf("JITUserID of KIM@example.com = %s, of kim@example.com = %s; want one user", domain.JITUserID(upper), domain.JITUserID(lower))
	}
	for _, a := range []string{"\u212Aim@example.com", "\u212AIM@example.com", "K\u0130M@example.com"} {
		if got, err := domain.NormalizeEmail(a); !errors.Is(err, domain.ErrInvalidRequest) {
			t.Errorf("NormalizeEmail(%+q) = %+q, %v; want invalid_request", a, got, err)
		}
		u, err := domain.NewJITUser(a, "", testNow)
		if !errors.Is(err, domain.ErrInvalidClaims) {
			t.Errorf("NewJITUser(%+q) = %s, %v; want jwt_invalid_claims", a, u.UserID, err)
		}
	}
}

var userIDPattern = regexp.MustCompile(`^user-[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestJITUserID(t *testing.T) {
	t.Parallel()
	norm := func(s string) string {
		n, err := domain.NormalizeEmail(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	id := domain.JITUserID(norm("ada@example.com"))
	if !userIDPattern.MatchString(id) || !domain.ValidCommandID(id) {
		t.Errorf("JITUserID = %q, want user-<uuid v8>", id)
	}
	if again := domain.JITUserID(norm("ada@example.com")); again != id {
		t.Errorf("JITUserID is not stable: %q, then %q", id, again)
	}
	for _, same := range []string{"Ada@Example.com", "ADA@EXAMPLE.COM", " ada@example.com "} {
		if got := domain.JITUserID(norm(same)); got != id {
			t.Errorf("JITUserID(NormalizeEmail(%q)) = %q, want %q", same, got, id)
		}
	}
	if other := domain.JITUserID(norm("bob@example.com")); other == id {
		t.Errorf("two addresses share the JIT user id %q", id)
	}
}

func TestNewJITUser(t *testing.T) {
	t.Parallel()
	at := testNow.Add(123 * time.Millisecond)
	u, err := domain.NewJITUser("Ada@Example.com", "ext-42", at)
	if err != nil {
		t.Fatalf("NewJITUser: %v", err)
	}
	if u.UserID != domain.JITUserID("ada@example.com") {
		t.Errorf("UserID = %q, want the JIT id of the normalized address", u.UserID)
	}
	if len(u.Emails) != 1 || u.Emails[0] != (domain.UserEmail{Email: "Ada@Example.com", Verified: true}) {
		t.Errorf("Emails = %+v, want the token's address, verified", u.Emails)
	}
	if !u.Active() || u.ExternalID != "ext-42" || u.Version != 1 || u.CreatedAt != testNow || u.UpdatedAt != testNow {
		t.Errorf("user = %+v", u)
	}
	if string(u.TrustedMetadata) != `{}` {
		t.Errorf("TrustedMetadata = %s, want {}", u.TrustedMetadata)
	}

	other, err := domain.NewJITUser("ada@example.com", "", at)
	if err != nil {
		t.Fatal(err)
	}
	if other.UserID != u.UserID {
		t.Errorf("the same address in another case provisions another user: %q, %q", other.UserID, u.UserID)
	}

	for _, bad := range []string{"", "not-an-email", "Ada <ada@example.com>"} {
		if _, err := domain.NewJITUser(bad, "", at); !errors.Is(err, domain.ErrInvalidClaims) {
			t.Errorf("NewJITUser(%q) = %v, want jwt_invalid_claims", bad, err)
		}
	}
}

// TestNewUserAcceptsEachLimitExactly: names and external_id of exactly 256
// characters and trusted_metadata of exactly 16 KiB are accepted; one more
// is refused.
func TestNewUserAcceptsEachLimitExactly(t *testing.T) {
	t.Parallel()
	meta := func(n int) json.RawMessage { // {"k":"xxx…"} of exactly n bytes
		return json.RawMessage(`{"k":"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"}`)
	}
	base := func() domain.UserSpec {
		return domain.UserSpec{UserID: "user-lim", Emails: []domain.UserEmail{{Email: "lim@example.com"}}}
	}
	for name, edit := range map[string]func(s *domain.UserSpec, n int){
		"first_name":       func(s *domain.UserSpec, n int) { s.Name.FirstName = strings.Repeat("f", n) },
		"middle_name":      func(s *domain.UserSpec, n int) { s.Name.MiddleName = strings.Repeat("m", n) },
		"last_name":        func(s *domain.UserSpec, n int) { s.Name.LastName = strings.Repeat("l", n) },
		"external_id":      func(s *domain.UserSpec, n int) { s.ExternalID = strings.Repeat("e", n) },
		"trusted_metadata": func(s *domain.UserSpec, n int) { s.TrustedMetadata = meta(n) },
	} {
		limit := 256
		if name == "trusted_metadata" {
			limit = domain.MaxTrustedMetadataSize
		}
		at := base()
		edit(&at, limit)
		if _, err := domain.NewUser(at, 1, time.Now(), time.Now()); err != nil {
			t.Errorf("%s of %d: %v", name, limit, err)
		}
		over := base()
		edit(&over, limit+1)
		if _, err := domain.NewUser(over, 1, time.Now(), time.Now()); !errors.Is(err, domain.ErrInvalidUser) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s of %d: %v, want invalid_user naming %s", name, limit+1, err, name)
		}
	}
}
