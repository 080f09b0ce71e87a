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

// RevokeRequest ends the session a bearer proof names: exactly one of
// SessionToken and SessionJWT. This is the applications' revoke
// (<prefix>.sessions.revoke); ending a session by its id, or every session
// of a user, is an operator's (AdminRevoke).
type RevokeRequest struct {
	SessionToken Secret
	SessionJWT   Secret
}

// AdminRevokeRequest ends sessions as an operator: exactly one of
// SessionID, SessionToken, SessionJWT (one session) or UserID (every
// active session of the user).
type AdminRevokeRequest struct {
	SessionID    string
	SessionToken Secret
	SessionJWT   Secret
	UserID       string
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

// Revoke calls <prefix>.sessions.revoke: it ends the session whose token
// or JWT the request holds. Revoking a revoked session answers 200 again.
func (c *Client) Revoke(ctx context.Context, req RevokeRequest) (*RevokeResult, error) {
	return call[RevokeResult](ctx, c, "sessions.revoke", revokeWire{
		SessionToken: req.SessionToken.Reveal(), SessionJWT: req.SessionJWT.Reveal(),
	})
}

// AdminRevoke calls <prefix>.sessions.admin.revoke, the operators' revoke:
// by session id, by session token or JWT, or every active session of a
// user id. Ids are not secrets, so the deployment gives this subject to
// operators only (the shipped NATS configuration: the admin identity); a
// caller without it gets no answer (a *TransportError: no responders, or
// the context's end when the server refuses the publish). Revoking a revoked session answers 200 again.
func (c *Client) AdminRevoke(ctx context.Context, req AdminRevokeRequest) (*RevokeResult, error) {
	return call[RevokeResult](ctx, c, "sessions.admin.revoke", revokeWire{
		SessionID: req.SessionID, SessionToken: req.SessionToken.Reveal(),
		SessionJWT: req.SessionJWT.Reveal(), UserID: req.UserID,
	})
}

// SessionJWKS calls <prefix>.sessions.jwks: the public keys that verify
// session JWTs (match a JWT's kid with JWKS.Key, then JWK.PublicKey).
func (c *Client) SessionJWKS(ctx context.Context) (*JWKS, error) {
	return call[JWKS](ctx, c, "sessions.jwks", struct{}{})
}
