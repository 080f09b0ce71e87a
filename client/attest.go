package client

import (
	"context"
	"encoding/json"
)

// AttestRequest exchanges a trusted token for a session (contract
// section 6). Printing or marshaling it shows REDACTED for every secret.
type AttestRequest struct {
	// RequestID is the command's id: 1 to 128 characters of
	// A-Za-z0-9._:- (anything else is refused by the client with
	// ErrInvalidRequest, before anything is sent). Empty: the client makes
	// a random one (NewID). Set it yourself when you must ask again for
	// the outcome after a transport failure: the same id gets the same
	// outcome; reusing it for another request is refused (invalid_request).
	RequestID string
	// ProfileID names the trusted-auth-token profile. Required.
	ProfileID string
	// Token is the trusted token, a compact JWS. Required.
	Token Secret
	// SessionDurationMinutes (5 to 527040) starts a session, or with a
	// session argument moves its expiry; 0 leaves it out (then, without a
	// session argument, the reply carries the verified user only).
	SessionDurationMinutes int
	// SessionCustomClaims merge into the session's claims; a nil value
	// deletes a key. Reserved names (iss, sub, aud, exp, nbf, iat, jti,
	// tat_session and what folds onto them) are refused.
	SessionCustomClaims map[string]any
	// SessionToken or SessionJWT (not both) names an existing session of
	// the token's user, to which the trusted-auth-token factor is added.
	SessionToken Secret
	SessionJWT   Secret
}

// attestWire is the payload sent: the secrets revealed.
type attestWire struct {
	RequestID              string         `json:"request_id"`
	ProfileID              string         `json:"profile_id"`
	Token                  string         `json:"token"`
	SessionDurationMinutes *int           `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims    map[string]any `json:"session_custom_claims,omitempty"`
	SessionToken           string         `json:"session_token,omitempty"`
	SessionJWT             string         `json:"session_jwt,omitempty"`
}

// AttestResult is a successful attest: the user, and the session when one
// was started or extended. A repeat of a request (same RequestID) gets the
// first outcome again; its SessionToken and SessionJWT only while the
// trusted token is still valid and the session active (contract D22).
type AttestResult struct {
	StatusCode   int      `json:"status_code"`
	RequestID    string   `json:"request_id"`
	UserID       string   `json:"user_id"`
	User         *User    `json:"user,omitempty"`
	Session      *Session `json:"session,omitempty"`
	SessionToken Secret   `json:"session_token"`
	SessionJWT   Secret   `json:"session_jwt"`
}

// Attest publishes an attest request on <prefix>.attest.requests (or
// <prefix>.attest.requests.<app> with WithApp) and waits for its outcome,
// retrying a lost publish under the same id (see "Commands" in the package
// documentation). A refusal is an *Error (errors.Is(err, ErrTokenReplayed),
// ...); no usable answer is a *TransportError, whose ID and Stored say how
// to get the outcome later.
func (c *Client) Attest(ctx context.Context, req AttestRequest) (*AttestResult, error) {
	id := req.RequestID
	if id == "" {
		id = NewID()
	}
	if err := checkID("request_id", id); err != nil {
		return nil, err
	}
	w := attestWire{
		RequestID: id, ProfileID: req.ProfileID, Token: req.Token.Reveal(),
		SessionCustomClaims: req.SessionCustomClaims,
		SessionToken:        req.SessionToken.Reveal(), SessionJWT: req.SessionJWT.Reveal(),
	}
	if req.SessionDurationMinutes != 0 {
		d := req.SessionDurationMinutes
		w.SessionDurationMinutes = &d
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	subject := c.subject("attest", "requests")
	if c.app != "" {
		subject += "." + c.app
	}
	data, err := c.command(ctx, "attest", subject, "request_id", id, body)
	if err != nil {
		return nil, err
	}
	var r AttestResult
	if err := decode("attest", subject, data, "request_id", &r); err != nil {
		return nil, err
	}
	return &r, nil
}
