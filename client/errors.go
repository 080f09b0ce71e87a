package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Error is a refusal by the worker: a reply whose status_code is 400 or
// more (contract section 9). Type is the stable error_type, Message a
// sentence for people (it may change; never match on it).
//
// Errors compare by Type with errors.Is, so a caller tests the error_type
// against the sentinels of this package:
//
//	if errors.Is(err, client.ErrTokenReplayed) { ... }
//
// and reads the details with errors.As:
//
//	var e *client.Error
//	if errors.As(err, &e) { log.Println(e.StatusCode, e.Type) }
type Error struct {
	StatusCode int    // the HTTP meaning of the refusal: 400, 401, 404, 409, 500, 503
	Type       string // error_type, e.g. "token_replayed"
	Message    string // error_message
	// ID is the request_id or change_id the reply echoed (commands only).
	ID string
}

// Error formats the refusal as "tat: <type> (<status>): <message>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tat: ")
	b.WriteString(e.Type)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (%d)", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.ID != "" {
		fmt.Fprintf(&b, " [id %s]", e.ID)
	}
	return b.String()
}

// Is reports whether target is an *Error with the same Type.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Type == e.Type
}

func sentinel(typ string, status int) *Error { return &Error{StatusCode: status, Type: typ} }

// One sentinel per error_type of the contract (section 9). Compare with
// errors.Is; the sentinels themselves carry the documented status code and
// no message.
var (
	ErrInvalidRequest                        = sentinel("invalid_request", 400)
	ErrInvalidSessionDurationMinutes         = sentinel("invalid_session_duration_minutes", 400)
	ErrReservedClaimsInCustomClaims          = sentinel("reserved_claims_in_custom_claims", 400)
	ErrCustomClaimsTooLarge                  = sentinel("custom_claims_too_large", 400)
	ErrTooManySessionArguments               = sentinel("too_many_session_arguments", 400)
	ErrInvalidTrustedAuthToken               = sentinel("invalid_trusted_auth_token", 401)
	ErrJWTInvalidIssuer                      = sentinel("jwt_invalid_issuer", 401)
	ErrJWTInvalidAudience                    = sentinel("jwt_invalid_audience", 401)
	ErrJWTExpired                            = sentinel("jwt_expired", 401)
	ErrJWTNotYetValid                        = sentinel("jwt_not_yet_valid", 401)
	ErrJWTInvalidClaims                      = sentinel("jwt_invalid_claims", 401)
	ErrTokenReplayed                         = sentinel("token_replayed", 401)
	ErrTrustedTokenProfileNotFound           = sentinel("trusted_token_profile_not_found", 404)
	ErrUserNotFound                          = sentinel("user_not_found", 404)
	ErrSessionNotFound                       = sentinel("session_not_found", 404)
	ErrUserIDMismatch                        = sentinel("user_id_mismatch", 409)
	ErrVersionConflict                       = sentinel("version_conflict", 409)
	ErrDuplicateEmail                        = sentinel("duplicate_email", 409)
	ErrTrustedTokenProfileInvalidRequest     = sentinel("trusted_token_profile_invalid_request", 400)
	ErrTooManyPEMFilesForTrustedTokenProfile = sentinel("too_many_pem_files_for_trusted_token_profile", 400)
	ErrInvalidUser                           = sentinel("invalid_user", 400)
	ErrJWKSUnavailable                       = sentinel("jwks_unavailable", 503)
	ErrKeyRotationInProgress                 = sentinel("key_rotation_in_progress", 409)
	ErrInternalServerError                   = sentinel("internal_server_error", 500)
)

// sentinels lists every error_type the client knows, for the drift test
// against the worker's domain/errors.go.
var sentinels = []*Error{
	ErrInvalidRequest, ErrInvalidSessionDurationMinutes, ErrReservedClaimsInCustomClaims,
	ErrCustomClaimsTooLarge, ErrTooManySessionArguments, ErrInvalidTrustedAuthToken,
	ErrJWTInvalidIssuer, ErrJWTInvalidAudience, ErrJWTExpired, ErrJWTNotYetValid,
	ErrJWTInvalidClaims, ErrTokenReplayed, ErrTrustedTokenProfileNotFound, ErrUserNotFound,
	ErrSessionNotFound, ErrUserIDMismatch, ErrVersionConflict, ErrDuplicateEmail,
	ErrTrustedTokenProfileInvalidRequest, ErrTooManyPEMFilesForTrustedTokenProfile,
	ErrInvalidUser, ErrJWKSUnavailable, ErrInternalServerError, ErrKeyRotationInProgress,
}

// Transport failures: the call got no usable answer from the worker. They
// come wrapped in a *TransportError and never compare equal to an *Error.
var (
	// ErrNoResponders: nobody serves the subject of a request (the sessions
	// or reads service is not running, or the prefix is wrong). It is
	// nats.ErrNoResponders itself, so either compares.
	ErrNoResponders = nats.ErrNoResponders
	// ErrNoStream: no JetStream stream takes the command's subject (the
	// worker never ran against this server, or the prefix is wrong).
	ErrNoStream = errors.New("tat: no stream takes the subject")
	// ErrTimeout: no answer within the client's default timeout (WithTimeout),
	// used when the caller's context has no deadline. It wraps
	// context.DeadlineExceeded. When the caller's own context ends, the
	// error wraps that context's Err() instead.
	ErrTimeout = fmt.Errorf("tat: no answer within the client's timeout: %w", context.DeadlineExceeded)
	// ErrMalformedReply: the reply is not the JSON object of the contract.
	ErrMalformedReply = errors.New("tat: malformed reply")
)

// TransportError is a call that got no usable answer: no responders, no
// stream, a timeout, a cancelled context, a closed connection, a malformed
// reply. Err is what happened (ErrNoResponders, ErrNoStream, ErrTimeout,
// ErrMalformedReply, the caller's ctx.Err(), or a NATS error) and Cause
// the underlying NATS or JSON error when there is one; errors.Is sees both.
//
// For a command (attest, profile and user changes), ID is the command's id
// and Stored says whether a PubAck showed the stream holds it: a stored
// command is still applied, and calling again with the same id (after the
// command streams' duplicate window, 1 s by default; the client waits it
// out by itself) returns its one outcome.
type TransportError struct {
	Op      string // the call, e.g. "attest", "sessions.revoke", "reads.users.get"
	Subject string // the subject it was sent to
	ID      string // the command id (commands only)

	Stored   bool   // a PubAck showed the stream holds the command
	Stream   string // the stream that holds it
	Sequence uint64 // its sequence in that stream

	Err   error
	Cause error
}

// Error describes the failure and, for a stored command, how to get its
// outcome.
func (e *TransportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tat: %s on %s", e.Op, e.Subject)
	if e.ID != "" {
		fmt.Fprintf(&b, " (id %s)", e.ID)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Cause != nil && e.Cause != e.Err {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	if e.Stored {
		fmt.Fprintf(&b, "; the command is stored (%s seq %d) and will still be applied: call again with the same id for its outcome", e.Stream, e.Sequence)
	} else if e.ID != "" {
		b.WriteString("; the command may or may not be stored: call again with the same id, never a new one")
	}
	return b.String()
}

// Unwrap returns Err and Cause, so errors.Is and errors.As see both.
func (e *TransportError) Unwrap() []error {
	out := make([]error, 0, 2)
	for _, err := range []error{e.Err, e.Cause} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// localError is a request the client refuses before sending anything, with
// the refusal the worker would give.
func localError(s *Error, msg string) *Error {
	return &Error{StatusCode: s.StatusCode, Type: s.Type, Message: msg + " (refused by the client; nothing was sent)"}
}
