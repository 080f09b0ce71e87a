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
		{in: "ÄDA@example.com", want: "äda@example.com"},
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
