package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tat-worker/attest/domain"
)

// RevisionReader reads back the session revisions a request stored. Only
// Abandon uses it, off the hot path: a request given up after its
// deliveries announces the session an earlier delivery stored.
type RevisionReader interface {
	// RevisionBy returns the latest revision of sessionID that requestID
	// stored, if any.
	RevisionBy(ctx context.Context, sessionID, requestID string) (domain.SessionState, bool, error)
}

// jitKey is the outbox key of the user.created of a user made just in time
// by request id.
func jitKey(id string) string { return "attest-jit:" + id }

// leftovers finishes what earlier deliveries of a request given up wrote,
// so that nothing is left live that no event announces:
//
//   - a user made just in time whose user.created was recorded (the outbox,
//     see provision) but not published is written and announced;
//   - a session revision this request stored (a new session, under the id
//     derived from the request id and the token; or the next revision of
//     the session the request named) becomes the request's outcome:
//     session.created or session.updated, rebuilt from the stored revision.
//
// It returns the outcome when it made one (done), else the request ends
// as it did before, in attest.failed with internal_server_error. A repeat
// of a request finished here gets the outcome without bearer secrets
// (SecretsUntil is not known without the token's verified expiry).
func (a *Attest) leftovers(ctx context.Context, at *attempt) (Output, bool, error) {
	if err := a.resumeJIT(ctx, at.id); err != nil {
		return Output{}, false, err
	}
	st, created, ok, err := a.leftSession(ctx, at)
	if err != nil || !ok {
		return Output{}, false, err
	}
	s := st.Session
	a.View.PutSession(st)
	d := draft{
		o: Outcome{Key: at.key(), Fingerprint: at.fp, StatusCode: 200, SessionID: s.SessionID, CreatedAt: a.Now()},
		data: AttestEventData{RequestID: at.id, ProfileID: at.req.ProfileID, UserID: s.UserID, TokenSHA256: tokenSHA256(at.req.Token.Reveal()),
			Session: &s, SessionRevision: st.Revision},
		reply:   AttestReply{StatusCode: 200, RequestID: at.id, UserID: s.UserID, Session: &s},
		typ:     domain.EventSessionUpdated,
		subject: s.SessionID,
	}
	for _, f := range s.AuthenticationFactors {
		if f.TrustedAuthTokenFactor != nil && f.TrustedAuthTokenFactor.ProfileID == at.req.ProfileID {
			d.data.TokenID = f.TrustedAuthTokenFactor.TokenID
		}
	}
	if u, ok := a.View.User(s.UserID); ok {
		d.reply.User = &u
	}
	if created {
		d.typ = domain.EventSessionCreated
	}
	out, err := a.complete(ctx, d)
	return out, err == nil, err
}

// leftSession finds the session revision an earlier delivery of the
// request stored: revision 1 of the session id a new session would get,
// or the latest revision of the named session made by this request.
func (a *Attest) leftSession(ctx context.Context, at *attempt) (st domain.SessionState, created, ok bool, err error) {
	if a.Revisions == nil {
		return st, false, false, nil
	}
	req := at.req
	var sid string
	switch {
	case !req.SessionToken.Empty():
		cur, found := a.View.SessionByToken(req.SessionToken.Reveal())
		if !found {
			if err := a.Barrier.CatchUp(ctx); err != nil {
				return st, false, false, err
			}
			if cur, found = a.View.SessionByToken(req.SessionToken.Reveal()); !found {
				return st, false, false, nil
			}
		}
		sid = cur.Session.SessionID
	case !req.SessionJWT.Empty():
		// Its key as of when the request was stored: an earlier delivery
		// accepted the JWT then, even if the key has been retired since.
		c, err := a.Issuer.ParseJWT(req.SessionJWT.Reveal(), at.checkAt)
		if err != nil {
			return st, false, false, nil
		}
		sid = c.SessionID
	case req.SessionDurationMinutes != nil && *req.SessionDurationMinutes > 0 && !req.Token.Empty():
		sid, created = startedSessionID(at.id, req.Token.Reveal()), true
	default:
		return st, false, false, nil // verify only: no session
	}
	st, ok, err = a.Revisions.RevisionBy(ctx, sid, at.id)
	if err != nil {
		return st, false, false, fmt.Errorf("look up revisions of %s: %w", sid, err)
	}
	return st, created, ok, nil
}

// startedSessionID is the id of the session request id starts with token:
// fixed by both, so a retry finds its own session and a later request
// reusing the id gets another one.
func startedSessionID(id, token string) string {
	return domain.SessionIDPrefix + domain.DerivedUUID("session", id, tokenSHA256(token))
}

// resumeJIT finishes the user.created recorded by request id, if it was not
// published: the user is written (unless the view holds that version or a
// newer one) and the event published.
func (a *Attest) resumeJIT(ctx context.Context, id string) error {
	rec, ok, err := a.Done.Outcomes.Get(ctx, jitKey(id))
	if err != nil {
		return fmt.Errorf("look up %s: %w", jitKey(id), err)
	}
	if !ok || rec.Published {
		return nil
	}
	_, err = a.announceJIT(ctx, rec)
	return err
}

// announceJIT writes the user a recorded user.created names, unless the
// view holds that version or a newer one, publishes the event and puts the
// user in the view. Written before published, recorded before written: a
// user made just in time is never stored without its event being recorded
// first, and a retry or Abandon publishes it.
func (a *Attest) announceJIT(ctx context.Context, rec Outcome) (domain.User, error) {
	var d UserEventData
	if err := json.Unmarshal(rec.Event.Data, &d); err != nil || d.User == nil {
		return domain.User{}, fmt.Errorf("outbox %s names no user", rec.Key)
	}
	u := *d.User
	if !rec.Published {
		if version, _, _ := a.View.UserVersion(u.UserID); version < u.Version {
			if u.Version == 1 {
				if err := a.Users.InsertUser(ctx, u); err != nil {
					return domain.User{}, fmt.Errorf("insert user: %w", err)
				}
			} else if err := a.Users.PutUser(ctx, u, false); err != nil {
				return domain.User{}, fmt.Errorf("store user: %w", err)
			}
		}
		if _, err := a.Done.Resume(ctx, rec); err != nil {
			return domain.User{}, fmt.Errorf("publish user.created: %w", err)
		}
	}
	a.View.PutUser(u, false)
	return u, nil
}
