package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

// svcPrefix begins the request id of every session revision the sessions
// service writes (authenticate with a duration, every revocation). Such a
// revision has exactly one event, under the id derived from its request
// id, and whoever meets the revision stored without its event publishes it.
// '#' is outside the alphabet of request ids, so no attest request can pass
// for one (attest publishes its revisions' events itself).
const svcPrefix = "svc#"

// changeAs is a change to a session by the sessions service as reqID:
// edit makes the next state from the current one, or returns false when
// there is nothing to change (then nothing is written). The revision's
// event, of type typ, is published before the view applies it.
//
// The view applies a revision only once its event is out, so a revision
// the view lacks after a catch-up may be one whose event was never
// published (its writer failed or died after the insert). When an insert
// meets such a revision written by the sessions service (this reqID's own
// earlier attempt, or another request), its event is published here, under
// the id derived from the request that wrote it (JetStream drops the copy
// if that writer got there too), before edit runs again on it. So a
// revocation answered 200 always has its one event, and a session revoked
// meanwhile is not revoked twice.
func (h *Sessions) changeAs(reqID, typ string, now time.Time, edit func(*domain.SessionState) (bool, error)) sessionChange {
	return sessionChange{
		reqID: reqID,
		next: func(cur domain.SessionState) (nextRevision, bool, error) {
			next := nextRevision{st: cur}
			ok, err := edit(&next.st)
			return next, ok, err
		},
		stored: func(ctx context.Context, st domain.SessionState) error {
			return h.book().publishRetrying(ctx, st, typ, reqID, now)
		},
		lagging: func(ctx context.Context, st domain.SessionState, by string) error {
			return h.book().announce(ctx, st, by, now)
		},
	}
}

// eventTypeOf is the event a sessions-service revision was written with.
func eventTypeOf(st domain.SessionState) string {
	if st.Revoked {
		return domain.EventSessionRevoked
	}
	return domain.EventSessionUpdated
}

// announce publishes the event of a revision the sessions service stored
// (by) that a catch-up did not bring to the view (see changeAs), and
// applies it to the view. A revision another request stored is left to
// that request, whose outcome announces it.
func (b sessionBook) announce(ctx context.Context, st domain.SessionState, by string, now time.Time) error {
	if !strings.HasPrefix(by, svcPrefix) {
		return nil
	}
	if err := b.publishRetrying(ctx, st, eventTypeOf(st), by, now); err != nil {
		return err
	}
	b.view.PutSession(st)
	return nil
}

// publishRetrying publishes a revision's event, trying three times.
func (b sessionBook) publishRetrying(ctx context.Context, st domain.SessionState, typ, reqID string, now time.Time) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		if err = b.publish(ctx, st, typ, reqID, now); err == nil {
			return nil
		}
	}
	return err
}

// publish publishes the event of a revision the sessions service stored as
// reqID, under the id derived from reqID.
func (b sessionBook) publish(ctx context.Context, st domain.SessionState, typ, reqID string, now time.Time) error {
	s := st.Session
	var data any = AttestEventData{RequestID: reqID, UserID: s.UserID, Session: &s, SessionRevision: st.Revision}
	if typ == domain.EventSessionRevoked {
		data = SessionRevokedData{SessionID: s.SessionID, UserID: s.UserID, Session: &s, SessionRevision: st.Revision}
	}
	ev, err := domain.NewEvent(domain.EventID("session", reqID), typ, s.SessionID, now, data)
	if err != nil {
		return err
	}
	return b.pub.PublishEvent(ctx, ev)
}

// revoke ends one session: the next revision, marked revoked, and its one
// session.revoked event. It is the write path of every revocation (by
// session id, token or JWT; every session of a user; a user deleted or made
// inactive). A session found revoked is left as it is (changed false).
func (h *Sessions) revoke(ctx context.Context, st domain.SessionState, now time.Time, reqID string) (domain.SessionState, bool, error) {
	return h.book().change(ctx, st, h.changeAs(reqID, domain.EventSessionRevoked, now, func(s *domain.SessionState) (bool, error) {
		if s.Revoked {
			return false, nil
		}
		s.Revoked = true
		return true, nil
	}))
}

// endSessions revokes every active session of userID that the view holds
// (the caller catches it up first), reqID naming each revocation. It
// returns the ids of the sessions it revoked; sessions already revoked or
// expired are left.
func (h *Sessions) endSessions(ctx context.Context, userID string, now time.Time, reqID func(sessionID string) string) ([]string, error) {
	ended := []string{}
	for _, st := range h.View.SessionsOfUser(userID) {
		if !st.Active(now) {
			continue
		}
		_, changed, err := h.revoke(ctx, st, now, reqID(st.Session.SessionID))
		if err != nil {
			return ended, err
		}
		if changed {
			ended = append(ended, st.Session.SessionID)
		}
	}
	return ended, nil
}

// revokeUser answers admin revoke by user_id: every active session of the
// user ends, each with its session.revoked event. A user that never
// existed is user_not_found; a deleted or inactive one still has its
// sessions ended.
func (h *Sessions) revokeUser(ctx context.Context, userID string) SessionReply {
	if !domain.ValidCommandID(userID) {
		return errorReply(domain.ErrInvalidRequest.With("user_id must be 1 to 128 characters of A-Za-z0-9._:-"))
	}
	if err := h.Barrier.CatchUp(ctx); err != nil {
		return errorReply(err)
	}
	ended, err := h.endSessions(ctx, userID, h.Now().UTC(), func(string) string { return svcPrefix + domain.NewUUID() })
	if err != nil {
		return errorReply(err)
	}
	if version, _, _ := h.View.UserVersion(userID); version == 0 && len(h.View.SessionsOfUser(userID)) == 0 {
		return errorReply(domain.ErrUserNotFound.With("no user has this user_id"))
	}
	return SessionReply{StatusCode: 200, RevokedSessionIDs: &ended}
}

// EndSessionsAfter ends the sessions of the user a user event names, when
// that user is (after a catch-up) deleted or not active: a user deleted,
// disabled or pending has no session left in the store or in any view.
// Each revocation's id is derived from the event and the session, so a
// repeat (a redelivered or repeated command) ends only what is left and
// finishes a revocation an earlier attempt stored but did not publish. A
// user made active again by a later change keeps the sessions it has now.
func (h *Sessions) EndSessionsAfter(ctx context.Context, e domain.Event) error {
	switch e.Type {
	case domain.EventUserCreated, domain.EventUserUpdated, domain.EventUserDeleted:
	default:
		return nil
	}
	var d UserEventData
	if err := json.Unmarshal(e.Data, &d); err != nil || d.User == nil {
		return fmt.Errorf("event %s names no user", e.ID)
	}
	if e.Type != domain.EventUserDeleted && d.User.Active() {
		return nil
	}
	if err := h.Barrier.CatchUp(ctx); err != nil {
		return err
	}
	if u, live := h.View.User(d.User.UserID); live && u.Active() {
		return nil
	}
	_, err := h.endSessions(ctx, d.User.UserID, h.Now().UTC(), func(sessionID string) string {
		return svcPrefix + domain.DerivedUUID("end-session", e.ID, sessionID)
	})
	return err
}
