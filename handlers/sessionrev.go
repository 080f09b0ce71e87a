package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tat-worker/attest/domain"
)

// sessionRef names a session the way a request does: by id, by session
// token or by session JWT (the first one given counts).
type sessionRef struct {
	id    string
	token domain.Secret
	jwt   domain.Secret
}

// sessionBook is what attest and the sessions service share to find a
// session and to write its next revisions: the view, the barrier that
// catches it up, the store of revisions, the issuer of session JWTs and
// the publisher of the sessions service's revision events.
type sessionBook struct {
	view    *View
	barrier Barrier
	store   SessionStore
	issuer  *domain.Issuer
	pub     Publisher
}

func (a *Attest) book() sessionBook {
	return sessionBook{view: a.View, barrier: a.Barrier, store: a.Sessions, issuer: a.Issuer, pub: a.Pub}
}

func (h *Sessions) book() sessionBook {
	return sessionBook{view: h.View, barrier: h.Barrier, store: h.Sessions, issuer: h.Issuer, pub: h.Pub}
}

// find resolves ref in the view, catching the view up once when it does
// not hold the session (made a moment ago by another worker?). A session
// JWT is checked at now. With active the session must be active at now;
// without, an ended session is found too (revoke).
func (b sessionBook) find(ctx context.Context, ref sessionRef, now time.Time, active bool) (domain.SessionState, error) {
	lookup := func() (domain.SessionState, bool, error) {
		switch {
		case ref.id != "":
			st, ok := b.view.Session(ref.id)
			return st, ok, nil
		case !ref.token.Empty():
			st, ok := b.view.SessionByToken(ref.token.Reveal())
			return st, ok, nil
		case !ref.jwt.Empty():
			c, err := b.issuer.ParseJWT(ref.jwt.Reveal(), now)
			if err != nil {
				return domain.SessionState{}, false, err
			}
			st, ok := b.view.Session(c.SessionID)
			return st, ok, nil
		}
		return domain.SessionState{}, false, domain.ErrInvalidRequest.With("session_token or session_jwt is required")
	}
	st, ok, err := lookup()
	if err == nil && !ok {
		if err = b.barrier.CatchUp(ctx); err == nil {
			st, ok, err = lookup()
		}
	}
	if err != nil {
		return st, err
	}
	if !ok || (active && !st.Active(now)) {
		return st, domain.ErrSessionNotFound.With("no active session matches")
	}
	return st, nil
}

// sessionChange is one change a request makes to a session (see
// sessionBook.change).
type sessionChange struct {
	// reqID is the request the revision is stored under.
	reqID string
	// next makes the next state from the current one (change sets its
	// revision): false when there is nothing to change, an error to refuse
	// the change.
	next func(cur domain.SessionState) (nextRevision, bool, error)
	// stored, when set, runs once this request's revision is stored,
	// before the view applies it (the sessions service publishes its event
	// there).
	stored func(ctx context.Context, st domain.SessionState) error
	// resumes: a revision an earlier attempt of reqID stored is this
	// change, made already (attest: its outcome announces it).
	resumes bool
	// lagging, when set, runs for a revision another request stored that
	// the view lacks even after a catch-up (its event is not out), before
	// the next try builds on it.
	lagging func(ctx context.Context, st domain.SessionState, by string) error
}

// nextRevision is the next state of a session as a change makes it, with
// its custom claims encoded when the change encoded them (nil: not), so
// the view does not encode them again.
type nextRevision struct {
	st     domain.SessionState
	claims []byte
}

// change writes the next revision of cur as c makes it, then applies it to
// the view; changed is false when c.next had nothing to change. Concurrent
// changes to one session meet on the unique (session, revision) key: the
// loser catches up and tries again on the newer revision, five times at
// most.
func (b sessionBook) change(ctx context.Context, cur domain.SessionState, c sessionChange) (st domain.SessionState, changed bool, err error) {
	id := cur.Session.SessionID
	for range 5 {
		made, ok, err := c.next(cur)
		switch {
		case err != nil:
			return domain.SessionState{}, false, err
		case !ok:
			return cur, false, nil
		}
		next := made.st
		next.Revision = cur.Revision + 1
		stored, by, err := b.store.InsertRevision(ctx, next, c.reqID)
		switch {
		case err == nil:
			if c.stored != nil {
				if err := c.stored(ctx, next); err != nil {
					return domain.SessionState{}, false, err
				}
			}
			b.view.putSession(next, made.claims)
			return next, true, nil
		case !errors.Is(err, ErrConflict):
			return domain.SessionState{}, false, fmt.Errorf("insert session revision: %w", err)
		case c.resumes && by == c.reqID:
			b.view.PutSession(stored)
			return stored, true, nil
		}
		if err := b.barrier.CatchUp(ctx); err != nil {
			return domain.SessionState{}, false, err
		}
		cur, _ = b.view.Session(id)
		if cur.Revision < stored.Revision {
			if c.lagging != nil {
				if err := c.lagging(ctx, stored, by); err != nil {
					return domain.SessionState{}, false, err
				}
			}
			cur = stored
		}
	}
	return domain.SessionState{}, false, errors.New("session changed too often concurrently")
}
