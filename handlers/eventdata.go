package handlers

import "github.com/tat-worker/attest/domain"

// ProfileEventData is the data of profile events and replies.
type ProfileEventData struct {
	ChangeID     string          `json:"change_id,omitempty"`
	Profile      *domain.Profile `json:"profile,omitempty"`
	ProfileID    string          `json:"profile_id,omitempty"`
	StatusCode   int             `json:"status_code,omitempty"`
	ErrorType    string          `json:"error_type,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	// Position places the command in TAT_ADMIN (events only, not replies).
	Position
	// ReplyRefused: the command named a reply subject the worker does not
	// reply to; the outcome is the same, the reply was not sent (events only).
	ReplyRefused bool `json:"reply_refused,omitempty"`
}

// UserEventData is the data of user events and replies.
type UserEventData struct {
	ChangeID     string       `json:"change_id,omitempty"`
	User         *domain.User `json:"user,omitempty"`
	UserID       string       `json:"user_id,omitempty"`
	StatusCode   int          `json:"status_code,omitempty"`
	ErrorType    string       `json:"error_type,omitempty"`
	ErrorMessage string       `json:"error_message,omitempty"`
	// Position places the command in TAT_ADMIN (events only, not replies;
	// absent from the user.created of a user made just in time).
	Position
	ReplyRefused bool `json:"reply_refused,omitempty"` // as in ProfileEventData
}

// AttestEventData is the data of session and attest events (contract
// section 5). SessionRevision orders session changes for the workers'
// in-memory views, and Position places the request in TAT_ATTEST for the
// audit; both are additions to the contract.
type AttestEventData struct {
	RequestID       string          `json:"request_id"`
	ProfileID       string          `json:"profile_id,omitempty"`
	UserID          string          `json:"user_id,omitempty"`
	TokenID         string          `json:"token_id,omitempty"`
	TokenSHA256     string          `json:"token_sha256,omitempty"`
	Session         *domain.Session `json:"session,omitempty"`
	SessionRevision int64           `json:"session_revision,omitempty"`
	StatusCode      int             `json:"status_code,omitempty"`
	ErrorType       string          `json:"error_type,omitempty"`
	ErrorMessage    string          `json:"error_message,omitempty"`
	Position
	// ReplyRefused: the request named a reply subject the worker does not
	// reply to; the outcome is the same, the reply was not sent.
	ReplyRefused bool `json:"reply_refused,omitempty"`
}

// SessionRevokedData is the data of tat.session.revoked.
type SessionRevokedData struct {
	SessionID       string          `json:"session_id"`
	UserID          string          `json:"user_id"`
	Session         *domain.Session `json:"session"`
	SessionRevision int64           `json:"session_revision"`
}
