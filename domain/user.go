package domain

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"strings"
	"time"
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
		u.Emails = append(u.Emails, UserEmail{Email: strings.TrimSpace(e.Email), Verified: e.Verified})
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

// NormalizeEmail returns the matching form of an address (trimmed, lower
// case), refusing anything that is not a bare address of at most 254 bytes.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", ErrInvalidRequest.With("email must be 1 to 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", ErrInvalidRequest.With("email is not a bare address")
	}
	return strings.ToLower(s), nil
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
