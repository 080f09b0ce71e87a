package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// User statuses. Only an active user may attest.
const (
	UserActive   = "active"
	UserPending  = "pending"
	UserDisabled = "disabled"
)

// Limits on a user record.
const (
	MaxUserEmails          = 10
	MaxTrustedMetadataSize = 16 << 10
)

// UserEmail is one address of a user.
type UserEmail struct {
	Email    string `json:"email"`
	Verified bool   `json:"verified"`
}

// UserName is a user's name.
type UserName struct {
	FirstName  string `json:"first_name,omitempty"`
	MiddleName string `json:"middle_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
}

// UserSpec is the user as a command sends it (contract section 4).
type UserSpec struct {
	UserID          string          `json:"user_id,omitempty"`
	Emails          []UserEmail     `json:"emails"`
	Name            UserName        `json:"name"`
	Status          string          `json:"status,omitempty"`
	ExternalID      string          `json:"external_id,omitempty"`
	TrustedMetadata json.RawMessage `json:"trusted_metadata,omitempty"`
}

// User is a validated user, in the JSON form replies and events carry.
type User struct {
	UserSpec
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewUser validates spec and returns the user it describes. Problems are
// invalid_user; an empty status becomes active.
func NewUser(spec UserSpec, version int64, created, updated time.Time) (User, error) {
	u := User{UserSpec: spec, Version: version, CreatedAt: created.UTC().Truncate(time.Second), UpdatedAt: updated.UTC().Truncate(time.Second)}
	if !ValidCommandID(spec.UserID) {
		return User{}, ErrInvalidUser.With("user_id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	if u.Status == "" {
		u.Status = UserActive
	}
	switch u.Status {
	case UserActive, UserPending, UserDisabled:
	default:
		return User{}, ErrInvalidUser.With("status must be active, pending or disabled")
	}
	if len(spec.Emails) > MaxUserEmails {
		return User{}, ErrInvalidUser.With("a user has at most %d emails", MaxUserEmails)
	}
	seen := map[string]bool{}
	u.Emails = make([]UserEmail, 0, len(spec.Emails))
	for i, e := range spec.Emails {
		norm, err := NormalizeEmail(e.Email)
		if err != nil {
			return User{}, ErrInvalidUser.Wrap(err, "emails[%d] is not a valid email address", i)
		}
		if seen[norm] {
			return User{}, ErrInvalidUser.With("emails[%d] repeats another address of this user", i)
		}
		seen[norm] = true
		u.Emails = append(u.Emails, UserEmail{Email: trimEmail(e.Email), Verified: e.Verified})
	}
	for _, s := range []struct{ name, v string }{{"first_name", spec.Name.FirstName}, {"middle_name", spec.Name.MiddleName}, {"last_name", spec.Name.LastName}, {"external_id", spec.ExternalID}} {
		if len(s.v) > 256 {
			return User{}, ErrInvalidUser.With("%s is longer than 256 characters", s.name)
		}
	}
	if len(spec.TrustedMetadata) > 0 {
		if len(spec.TrustedMetadata) > MaxTrustedMetadataSize {
			return User{}, ErrInvalidUser.With("trusted_metadata is larger than 16 KiB")
		}
		var obj map[string]any
		if err := json.Unmarshal(spec.TrustedMetadata, &obj); err != nil || obj == nil {
			return User{}, ErrInvalidUser.With("trusted_metadata must be a JSON object")
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, spec.TrustedMetadata)
		u.TrustedMetadata = buf.Bytes()
	} else {
		u.TrustedMetadata = json.RawMessage(`{}`)
	}
	return u, nil
}

// NormalizedEmails returns the user's addresses in their matching form.
func (u User) NormalizedEmails() []string {
	out := make([]string, 0, len(u.Emails))
	for _, e := range u.Emails {
		if n, err := NormalizeEmail(e.Email); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Active reports whether the user may attest.
func (u User) Active() bool { return u.Status == UserActive }

// NormalizeEmail returns the matching form of an address: the key users
// are found by and JIT user ids derived from. The address, trimmed of ASCII
// white space, must be one bare address (no display name, comment or angle
// brackets) of at most 254 bytes.
//
// The key is the address with the ASCII letters A-Z lowered to a-z and every
// other byte kept, so two addresses share a key only when they differ in
// the case of ASCII letters: "Ada@Example.COM" is "ada@example.com", but
// "JOSÉ@example.com" (key "josÉ@example.com") is not "josé@example.com".
//
// An address whose Unicode spelling is ambiguous is refused
// (ErrInvalidRequest), since an issuer or a mail system may read it as
// another address, typically an ASCII one:
//   - the address, or its key, is not in Unicode NFC ("e" + U+0301 instead
//     of "é"; U+212A KELVIN SIGN, whose NFC is "K");
//   - it has a non-ASCII character tied to ASCII: its NFKC form, its lower,
//     upper or title case, or a character of its simple case folding
//     contains ASCII (U+0130 "İ", U+0131 "ı", U+017F "ſ", fullwidth "Ｋ",
//     "ﬁ", "²", U+00A0 NO-BREAK SPACE);
//   - it has a non-ASCII character that is not a letter, mark, number,
//     punctuation or symbol (spaces, invisible format characters such as
//     U+200B or U+00AD, controls, private use, unassigned), a full stop
//     IDNA reads as "." (U+3002, U+FF61), or U+FFFD, which JSON decoding
//     makes of any lone surrogate escape.
//
// Other non-ASCII text is kept as it is: "josé@example.com" in NFC and
// "ada@bücher.example" are valid, and match only themselves.
func NormalizeEmail(s string) (string, error) {
	s = trimEmail(s)
	if s == "" || len(s) > 254 {
		return "", ErrInvalidRequest.With("email must be 1 to 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", ErrInvalidRequest.With("email is not a bare address")
	}
	key := lowerASCII(s)
	if why := ambiguousEmail(s, key); why != "" {
		return "", ErrInvalidRequest.With("email %s", why)
	}
	return key, nil
}

// trimEmail trims ASCII white space only: trimming a Unicode space (U+00A0,
// U+3000...) would map a non-ASCII character onto nothing.
func trimEmail(s string) string { return strings.Trim(s, " \t\n\v\f\r") }

// lowerASCII lowers A-Z and keeps every other byte.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// ambiguousEmail says why the address s (with its key) is refused by the
// Unicode rules of NormalizeEmail, or returns "".
func ambiguousEmail(s, key string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
		case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
			return fmt.Sprintf("has %U, a space, invisible, control or unassigned character", r)
		case r == '\u3002' || r == '\uFF61':
			return fmt.Sprintf("has %U, which IDNA reads as a full stop", r)
		case r == utf8.RuneError:
			return "has U+FFFD, which stands for any undecodable text"
		case tiedToASCII(r):
			return fmt.Sprintf("has %U, which Unicode ties to an ASCII character", r)
		}
	}
	if !norm.NFC.IsNormalString(s) || !norm.NFC.IsNormalString(key) {
		return "is not in Unicode NFC"
	}
	return ""
}

// tiedToASCII reports whether the non-ASCII character r has an NFKC form, a
// simple case mapping or a simple case folding that contains ASCII.
func tiedToASCII(r rune) bool {
	for _, b := range []byte(norm.NFKC.String(string(r))) {
		if b < utf8.RuneSelf {
			return true
		}
	}
	if unicode.ToLower(r) < utf8.RuneSelf || unicode.ToUpper(r) < utf8.RuneSelf || unicode.ToTitle(r) < utf8.RuneSelf {
		return true
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return true
		}
	}
	return false
}

// JITUserID is the user id just-in-time provisioning gives to an address.
// It is fixed by the address, so two workers that race to provision the same
// user insert the same record and one insert wins.
func JITUserID(normalizedEmail string) string {
	return UserIDPrefix + DerivedUUID("jit-user", normalizedEmail)
}

// NewJITUser returns the user provisioned for a verified token's email.
func NewJITUser(email, externalID string, now time.Time) (User, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return User{}, ErrInvalidClaims.With("the token's email is not a valid address")
	}
	u, err := NewUser(UserSpec{
		UserID:     JITUserID(norm),
		Emails:     []UserEmail{{Email: email, Verified: true}},
		Status:     UserActive,
		ExternalID: externalID,
	}, 1, now, now)
	if err != nil {
		// Everything in it came from the token's claims.
		return User{}, ErrInvalidClaims.Wrap(err, "the token's claims cannot make a user: %s", AsError(err).Message)
	}
	return u, nil
}
