package domain_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// TestErrorTypes pins every error_type and status of contract section 6.
func TestErrorTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    *domain.Error
		code   string
		status int
	}{
		{domain.ErrInvalidRequest, "invalid_request", 400},
		{domain.ErrInvalidSessionDuration, "invalid_session_duration_minutes", 400},
		{domain.ErrReservedClaims, "reserved_claims_in_custom_claims", 400},
		{domain.ErrCustomClaimsTooLarge, "custom_claims_too_large", 400},
		{domain.ErrTooManySessionArguments, "too_many_session_arguments", 400},
		{domain.ErrInvalidToken, "invalid_trusted_auth_token", 401},
		{domain.ErrInvalidIssuer, "jwt_invalid_issuer", 401},
		{domain.ErrInvalidAudience, "jwt_invalid_audience", 401},
		{domain.ErrExpired, "jwt_expired", 401},
		{domain.ErrNotYetValid, "jwt_not_yet_valid", 401},
		{domain.ErrInvalidClaims, "jwt_invalid_claims", 401},
		{domain.ErrTokenReplayed, "token_replayed", 401},
		{domain.ErrProfileNotFound, "trusted_token_profile_not_found", 404},
		{domain.ErrUserNotFound, "user_not_found", 404},
		{domain.ErrSessionNotFound, "session_not_found", 404},
		{domain.ErrUserIDMismatch, "user_id_mismatch", 409},
		{domain.ErrVersionConflict, "version_conflict", 409},
		{domain.ErrDuplicateEmail, "duplicate_email", 409},
		{domain.ErrProfileInvalid, "trusted_token_profile_invalid_request", 400},
		{domain.ErrTooManyPEMs, "too_many_pem_files_for_trusted_token_profile", 400},
		{domain.ErrInvalidUser, "invalid_user", 400},
		{domain.ErrJWKSUnavailable, "jwks_unavailable", 503},
		{domain.ErrInternal, "internal_server_error", 500},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			if tc.err.Code != tc.code || tc.err.Status != tc.status || tc.err.Message == "" {
				t.Errorf("sentinel = %s %d %q, want %s %d", tc.err.Code, tc.err.Status, tc.err.Message, tc.code, tc.status)
			}
		})
	}
}

func TestErrorIsComparesCodes(t *testing.T) {
	t.Parallel()
	cause := io.ErrUnexpectedEOF
	wrapped := domain.ErrTokenReplayed.Wrap(cause, "token %s was used at %d", "tok-1", 7)
	if wrapped.Message != "token tok-1 was used at 7" || wrapped.Status != 401 || wrapped.Code != "token_replayed" {
		t.Errorf("Wrap = %+v", wrapped)
	}
	if domain.ErrTokenReplayed.Message != "this token was already used" {
		t.Errorf("Wrap changed the sentinel: %q", domain.ErrTokenReplayed.Message)
	}
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{name: "same code", err: wrapped, target: domain.ErrTokenReplayed, want: true},
		{name: "other code", err: wrapped, target: domain.ErrExpired, want: false},
		{name: "the cause", err: wrapped, target: cause, want: true},
		{name: "through fmt wrapping", err: fmt.Errorf("attest r-1: %w", wrapped), target: domain.ErrTokenReplayed, want: true},
		{name: "With keeps the code", err: domain.ErrExpired.With("expired at %d", 3), target: domain.ErrExpired, want: true},
		{name: "a plain error", err: errors.New("token_replayed"), target: domain.ErrTokenReplayed, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
	if got := wrapped.Error(); got != "token_replayed: token tok-1 was used at 7: unexpected EOF" {
		t.Errorf("Error() = %q", got)
	}
	if got := domain.ErrExpired.Error(); got != "jwt_expired: the token has expired" {
		t.Errorf("Error() = %q", got)
	}
	if got := domain.ErrExpired.Wrap(nil, ""); got.Message != domain.ErrExpired.Message {
		t.Errorf("Wrap without a format = %q, want the sentinel's message", got.Message)
	}
}

func TestAsError(t *testing.T) {
	t.Parallel()
	if domain.AsError(nil) != nil {
		t.Errorf("AsError(nil) is not nil")
	}
	e := domain.ErrUserNotFound.With("no user for %s", "x")
	if got := domain.AsError(fmt.Errorf("find: %w", e)); got != e {
		t.Errorf("AsError of a wrapped *Error = %v, want the *Error itself", got)
	}
	plain := errors.New("disk on fire")
	got := domain.AsError(plain)
	if got.Code != "internal_server_error" || got.Status != 500 || !errors.Is(got, plain) {
		t.Errorf("AsError(plain) = %+v, want internal_server_error caused by it", got)
	}
}
