package handlers

import (
	"context"
	"time"

	"github.com/tat-worker/attest/domain"
)

// AuthenticateRequest is the request of tat.sessions.authenticate.
type AuthenticateRequest struct {
	SessionToken           domain.Secret `json:"session_token"`
	SessionJWT             domain.Secret `json:"session_jwt"`
	SessionDurationMinutes *int          `json:"session_duration_minutes,omitempty"`
}

// RevokeRequest is the request of tat.sessions.revoke (session_token or
// session_jwt) and of tat.sessions.admin.revoke (any one of the four).
type RevokeRequest struct {
	SessionID    string        `json:"session_id,omitempty"`
	UserID       string        `json:"user_id,omitempty"`
	SessionToken domain.Secret `json:"session_token"`
	SessionJWT   domain.Secret `json:"session_jwt"`
}

// SessionReply is the reply of the sessions service.
type SessionReply struct {
	StatusCode   int             `json:"status_code"`
	Session      *domain.Session `json:"session,omitempty"`
	User         *domain.User    `json:"user,omitempty"`
	SessionToken string          `json:"session_token,omitempty"`
	SessionJWT   string          `json:"session_jwt,omitempty"`
	ErrorType    string          `json:"error_type,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`

	// RevokedSessionIDs answers admin revoke by user_id: the sessions it
	// ended.
	RevokedSessionIDs *[]string `json:"revoked_session_ids,omitempty"`

	cause error // the internal reason, for the worker's log; never sent
}

// Cause returns the internal reason of a failed reply (nil on success).
func (r SessionReply) Cause() error { return r.cause }

// Sessions serves authenticate, revoke and admin revoke from the
// in-memory view; changes insert a new session revision and publish an
// event.
type Sessions struct {
	View     *View
	Barrier  Barrier
	Sessions SessionStore
	Pub      Publisher
	Issuer   *domain.Issuer
	Now      func() time.Time
}

// Authenticate checks a session token or JWT and returns the session, its
// user and a fresh session JWT; with session_duration_minutes the expiry
// moves to now plus that many minutes.
func (h *Sessions) Authenticate(ctx context.Context, data []byte) SessionReply {
	var req AuthenticateRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return errorReply(err)
	}
	if !req.SessionToken.Empty() && !req.SessionJWT.Empty() {
		return errorReply(domain.ErrTooManySessionArguments.With("send session_token or session_jwt, not both"))
	}
	now := h.Now().UTC()
	if req.SessionDurationMinutes != nil {
		if err := domain.ValidateSessionDuration(*req.SessionDurationMinutes); err != nil {
			return errorReply(err)
		}
	}
	st, err := h.book().find(ctx, sessionRef{token: req.SessionToken, jwt: req.SessionJWT}, now, true)
	if err != nil {
		return errorReply(err)
	}
	user, ok := h.View.User(st.Session.UserID)
	if !ok || !user.Active() {
		return errorReply(domain.ErrSessionNotFound.With("the session's user is not active"))
	}
	if req.SessionDurationMinutes != nil {
		// A session ended meanwhile (a revocation won the revision) is not
		// extended.
		extend := h.changeAs(svcPrefix+domain.NewUUID(), domain.EventSessionUpdated, now, func(s *domain.SessionState) (bool, error) {
			if !s.Active(now) {
				return false, domain.ErrSessionNotFound.With("the session ended")
			}
			s.Session.ExpiresAt = now.Truncate(time.Second).Add(time.Duration(*req.SessionDurationMinutes) * time.Minute)
			s.Session.LastAccessedAt = now.Truncate(time.Second)
			return true, nil
		})
		if st, _, err = h.book().change(ctx, st, extend); err != nil {
			return errorReply(err)
		}
	}
	s := st.Session
	s.LastAccessedAt = now.Truncate(time.Second)
	jwt, err := h.Issuer.MintJWT(s, now)
	if err != nil {
		return errorReply(err)
	}
	r := SessionReply{StatusCode: 200, Session: &s, User: &user, SessionJWT: jwt.Reveal()}
	if !req.SessionToken.Empty() {
		// Only to the one who sent it: a (short-lived) JWT never buys the
		// (long-lived) session token.
		r.SessionToken = req.SessionToken.Reveal()
	}
	return r
}

// Revoke answers tat.sessions.revoke, the applications' revoke: it ends
// the session that a bearer proof names, exactly one of session_token and
// session_jwt. Ids are not proofs: session ids are in events, logs and
// replies, and a JIT user's id is derived from its email address, so
// session_id and user_id are refused (invalid_request) and left to
// operators, on tat.sessions.admin.revoke (AdminRevoke). Revoking a
// revoked session answers 200 again and publishes nothing more.
func (h *Sessions) Revoke(ctx context.Context, data []byte) SessionReply {
	var req RevokeRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return errorReply(err)
	}
	if req.SessionID != "" || req.UserID != "" {
		return errorReply(domain.ErrInvalidRequest.With("revoke by session_id or user_id is an operator's call, on sessions.admin.revoke; send session_token or session_jwt here"))
	}
	if req.SessionToken.Empty() == req.SessionJWT.Empty() {
		return errorReply(domain.ErrInvalidRequest.With("give exactly one of session_token, session_jwt"))
	}
	return h.revokeSession(ctx, sessionRef{token: req.SessionToken, jwt: req.SessionJWT})
}

// AdminRevoke answers tat.sessions.admin.revoke, the operators' revoke:
// it ends a session named by id, token or JWT, or every session of a
// user_id (exactly one of the four). The shipped NATS configuration lets
// only the admin identity call it. Revoking a revoked session answers 200
// again and publishes nothing more.
func (h *Sessions) AdminRevoke(ctx context.Context, data []byte) SessionReply {
	var req RevokeRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return errorReply(err)
	}
	n := 0
	for _, set := range []bool{req.SessionID != "", !req.SessionToken.Empty(), !req.SessionJWT.Empty(), req.UserID != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errorReply(domain.ErrInvalidRequest.With("give exactly one of session_id, session_token, session_jwt, user_id"))
	}
	if req.UserID != "" {
		return h.revokeUser(ctx, req.UserID)
	}
	return h.revokeSession(ctx, sessionRef{id: req.SessionID, token: req.SessionToken, jwt: req.SessionJWT})
}

// revokeSession ends the one session ref names, found revoked or not.
func (h *Sessions) revokeSession(ctx context.Context, ref sessionRef) SessionReply {
	now := h.Now().UTC()
	st, err := h.book().find(ctx, ref, now, false)
	if err != nil {
		return errorReply(err)
	}
	if st, _, err = h.revoke(ctx, st, now, svcPrefix+domain.NewUUID()); err != nil {
		return errorReply(err)
	}
	return SessionReply{StatusCode: 200, Session: &st.Session}
}

func errorReply(err error) SessionReply {
	e := domain.AsError(err)
	return SessionReply{StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message, cause: err}
}
