package client

import "context"

// AuthenticateRequest checks a session (contract section 7): exactly one of
// SessionToken and SessionJWT.
type AuthenticateRequest struct {
	SessionToken Secret
	SessionJWT   Secret
	// SessionDurationMinutes (5 to 527040) moves the session's expiry to
	// now plus that many minutes; 0 leaves it out.
	SessionDurationMinutes int
}

type authenticateWire struct {
	SessionToken           string `json:"session_token,omitempty"`
	SessionJWT             string `json:"session_jwt,omitempty"`
	SessionDurationMinutes *int   `json:"session_duration_minutes,omitempty"`
}

// AuthenticateResult is an active session, its active user and a fresh
// session JWT. SessionToken is set only when the request sent it: a
// session JWT alone never buys the long-lived token.
type AuthenticateResult struct {
	StatusCode   int     `json:"status_code"`
	Session      Session `json:"session"`
	User         User    `json:"user"`
	SessionToken Secret  `json:"session_token"`
	SessionJWT   Secret  `json:"session_jwt"`
}

// Authenticate calls <prefix>.sessions.authenticate. A session that does
// not exist, has ended or whose user is not active is ErrSessionNotFound.
func (c *Client) Authenticate(ctx context.Context, req AuthenticateRequest) (*AuthenticateResult, error) {
	w := authenticateWire{SessionToken: req.SessionToken.Reveal(), SessionJWT: req.SessionJWT.Reveal()}
	if req.SessionDurationMinutes != 0 {
		d := req.SessionDurationMinutes
		w.SessionDurationMinutes = &d
	}
	return call[AuthenticateResult](ctx, c, "sessions.authenticate", w)
}

// RevokeRequest ends sessions: exactly one of SessionID, SessionToken,
// SessionJWT (one session) or UserID (every active session of the user).
type RevokeRequest struct {
	SessionID    string
	SessionToken Secret
	SessionJWT   Secret
	// UserID revokes every active session of the user. It is served by
	// the worker's revoke-by-user extension (being built alongside this
	// client); a worker without it refuses the member (ErrInvalidRequest).
	UserID string
}

type revokeWire struct {
	SessionID    string `json:"session_id,omitempty"`
	SessionToken string `json:"session_token,omitempty"`
	SessionJWT   string `json:"session_jwt,omitempty"`
	UserID       string `json:"user_id,omitempty"`
}

// RevokeResult is a revocation's outcome: the session (revoking one
// session) or the ids of the sessions it ended (revoking by user, none
// when the user had no active session).
type RevokeResult struct {
	StatusCode        int      `json:"status_code"`
	Session           *Session `json:"session,omitempty"`
	RevokedSessionIDs []string `json:"revoked_session_ids,omitempty"`
}

// Revoke calls <prefix>.sessions.revoke. Revoking a revoked session
// answers 200 again.
func (c *Client) Revoke(ctx context.Context, req RevokeRequest) (*RevokeResult, error) {
	return call[RevokeResult](ctx, c, "sessions.revoke", revokeWire{
		SessionID: req.SessionID, SessionToken: req.SessionToken.Reveal(),
		SessionJWT: req.SessionJWT.Reveal(), UserID: req.UserID,
	})
}

// SessionJWKS calls <prefix>.sessions.jwks: the public keys that verify
// session JWTs (match a JWT's kid with JWKS.Key, then JWK.PublicKey).
func (c *Client) SessionJWKS(ctx context.Context) (*JWKS, error) {
	return call[JWKS](ctx, c, "sessions.jwks", struct{}{})
}
