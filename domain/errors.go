// Package domain holds the pure rules of the trusted-auth-token worker:
// profiles, users, sessions, the token checklist, claim mapping and the
// stable error codes of the wire contract. It imports no driver and no NATS.
package domain

import (
	"errors"
	"fmt"
)

// Error is the one rejection type. Code is the stable error_type of the wire
// contract, Status its HTTP meaning, Message a sentence for people and Cause
// the internal reason (never sent on the wire).
type Error struct {
	Code    string
	Status  int
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same Code, so sentinels
// compare by code: errors.Is(err, domain.ErrTokenReplayed).
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// Wrap returns a copy of the sentinel e with a new message and cause.
func (e *Error) Wrap(cause error, format string, args ...any) *Error {
	msg := e.Message
	if format != "" {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Code: e.Code, Status: e.Status, Message: msg, Cause: cause}
}

// With returns a copy of the sentinel e with a new message.
func (e *Error) With(format string, args ...any) *Error {
	return e.Wrap(nil, format, args...)
}

func sentinel(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

// Sentinels, one per error_type of the wire contract (section 6).
var (
	ErrInvalidRequest          = sentinel("invalid_request", 400, "the request is not valid")
	ErrInvalidSessionDuration  = sentinel("invalid_session_duration_minutes", 400, "session_duration_minutes must be between 5 and 527040")
	ErrReservedClaims          = sentinel("reserved_claims_in_custom_claims", 400, "session_custom_claims uses a reserved claim name")
	ErrCustomClaimsTooLarge    = sentinel("custom_claims_too_large", 400, "session_custom_claims is larger than 4 KiB")
	ErrTooManySessionArguments = sentinel("too_many_session_arguments", 400, "send session_token or session_jwt, not both")
	ErrInvalidToken            = sentinel("invalid_trusted_auth_token", 401, "the trusted auth token is not valid")
	ErrInvalidIssuer           = sentinel("jwt_invalid_issuer", 401, "the token's issuer does not match the profile")
	ErrInvalidAudience         = sentinel("jwt_invalid_audience", 401, "the token's audience does not contain the profile's audience")
	ErrExpired                 = sentinel("jwt_expired", 401, "the token has expired")
	ErrNotYetValid             = sentinel("jwt_not_yet_valid", 401, "the token is not valid yet")
	ErrInvalidClaims           = sentinel("jwt_invalid_claims", 401, "the token's claims are not valid")
	ErrTokenReplayed           = sentinel("token_replayed", 401, "this token was already used")
	ErrProfileNotFound         = sentinel("trusted_token_profile_not_found", 404, "no such trusted token profile")
	ErrUserNotFound            = sentinel("user_not_found", 404, "no active user matches the token")
	ErrSessionNotFound         = sentinel("session_not_found", 404, "no active session matches")
	ErrUserIDMismatch          = sentinel("user_id_mismatch", 409, "the session belongs to another user")
	ErrVersionConflict         = sentinel("version_conflict", 409, "expected_version does not match the stored version")
	ErrDuplicateEmail          = sentinel("duplicate_email", 409, "the email belongs to another user")
	ErrProfileInvalid          = sentinel("trusted_token_profile_invalid_request", 400, "the trusted token profile is not valid")
	ErrTooManyPEMs             = sentinel("too_many_pem_files_for_trusted_token_profile", 400, "a profile holds at most 5 public keys")
	ErrInvalidUser             = sentinel("invalid_user", 400, "the user is not valid")
	ErrJWKSUnavailable         = sentinel("jwks_unavailable", 503, "no usable keys could be fetched for the profile")
	ErrInternal                = sentinel("internal_server_error", 500, "internal error")
)

// AsError returns err as an *Error; anything else becomes internal_server_error
// with err as its cause.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal.Wrap(err, "")
}
