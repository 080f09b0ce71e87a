package domain

import "encoding/json"

// AttestRequest is the payload of tat.attest.requests (contract section 5).
type AttestRequest struct {
	RequestID              string          `json:"request_id,omitempty"`
	ProfileID              string          `json:"profile_id"`
	Token                  Secret          `json:"token"`
	SessionDurationMinutes *int            `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims    json.RawMessage `json:"session_custom_claims,omitempty"`
	SessionToken           Secret          `json:"session_token"`
	SessionJWT             Secret          `json:"session_jwt"`
}

// Validate checks the request's own fields (not the token) and returns the
// parsed custom claims.
func (r AttestRequest) Validate() (map[string]any, error) {
	if r.ProfileID == "" || len(r.ProfileID) > 128 {
		return nil, ErrInvalidRequest.With("profile_id is required")
	}
	if r.Token.Empty() {
		return nil, ErrInvalidRequest.With("token is required")
	}
	if !r.SessionToken.Empty() && !r.SessionJWT.Empty() {
		return nil, ErrTooManySessionArguments.With("send session_token or session_jwt, not both")
	}
	if r.SessionDurationMinutes != nil {
		if err := ValidateSessionDuration(*r.SessionDurationMinutes); err != nil {
			return nil, err
		}
	}
	return ParseCustomClaims(r.SessionCustomClaims)
}

// Command operations.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// ProfileCommand is the payload of tat.profiles.commands.
type ProfileCommand struct {
	ChangeID        string       `json:"change_id,omitempty"`
	Op              string       `json:"op"`
	ExpectedVersion *int64       `json:"expected_version,omitempty"`
	Profile         *ProfileSpec `json:"profile,omitempty"`
	ProfileID       string       `json:"profile_id,omitempty"`
}

// Validate checks the command's shape.
func (c ProfileCommand) Validate() error {
	switch c.Op {
	case OpUpsert:
		if c.Profile == nil {
			return ErrProfileInvalid.With("upsert needs a profile")
		}
	case OpDelete:
		if c.ProfileID == "" {
			return ErrProfileInvalid.With("delete needs a profile_id")
		}
	default:
		return ErrInvalidRequest.With("op must be upsert or delete")
	}
	return nil
}

// UserCommand is the payload of tat.users.commands.
type UserCommand struct {
	ChangeID        string    `json:"change_id,omitempty"`
	Op              string    `json:"op"`
	ExpectedVersion *int64    `json:"expected_version,omitempty"`
	User            *UserSpec `json:"user,omitempty"`
	UserID          string    `json:"user_id,omitempty"`
}

// Validate checks the command's shape.
func (c UserCommand) Validate() error {
	switch c.Op {
	case OpUpsert:
		if c.User == nil {
			return ErrInvalidUser.With("upsert needs a user")
		}
	case OpDelete:
		if c.UserID == "" {
			return ErrInvalidUser.With("delete needs a user_id")
		}
	default:
		return ErrInvalidRequest.With("op must be upsert or delete")
	}
	return nil
}

// CheckVersion applies expected_version against the stored version (0 when
// there is none).
func CheckVersion(expected *int64, stored int64) error {
	if expected != nil && *expected != stored {
		return ErrVersionConflict.With("expected_version %d, stored version is %d", *expected, stored)
	}
	return nil
}
