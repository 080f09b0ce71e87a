package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/tat-worker/attest/domain"
)

// View is a worker's in-memory picture of profiles, users and sessions: the
// attest hot path reads only this. It is loaded from the store at start and
// kept current from the events stream (every worker applies every event),
// and from the worker's own writes as it makes them. Changes apply only when
// their version (revision) is newer, so replays and races are harmless.
//
// Users and sessions are held as compact records (viewrec.go), decoded into
// domain values under the read lock when asked for; each lookup key (user
// id, matching email, session id, session token hash) has one index entry,
// pointing at the record.
type View struct {
	mu       sync.RWMutex
	changed  *sync.Cond
	seq      uint64
	profiles map[string]profileEntry
	users    map[string]*userRec
	byEmail  map[string]*userRec
	sessions map[string]*sessionRec
	byToken  map[tokenKey]*sessionRec
	byUser   map[string]map[string]struct{} // user id -> its session ids
	syms     symtab
	strs     interner
	tokenOf  func(sessionID string) string
}

type profileEntry struct {
	p       domain.Profile
	deleted bool
}

// NewView returns an empty view. tokenOf derives a session's token, so the
// view can index sessions by token hash.
func NewView(tokenOf func(sessionID string) string) *View {
	v := &View{
		profiles: map[string]profileEntry{},
		users:    map[string]*userRec{},
		byEmail:  map[string]*userRec{},
		sessions: map[string]*sessionRec{},
		byToken:  map[tokenKey]*sessionRec{},
		byUser:   map[string]map[string]struct{}{},
		syms:     newSymtab(),
		strs:     interner{m: map[string]string{}},
		tokenOf:  tokenOf,
	}
	v.changed = sync.NewCond(&v.mu)
	return v
}

// Profile returns a live profile.
func (v *View) Profile(id string) (domain.Profile, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.profiles[id]
	return e.p, ok && !e.deleted
}

// ProfileVersion returns the stored version of a profile, deleted or not
// (0 when it never existed).
func (v *View) ProfileVersion(id string) (version int64, created time.Time, live bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.profiles[id]
	return e.p.Version, e.p.CreatedAt, ok && !e.deleted
}

// Profiles returns the live profiles.
func (v *View) Profiles() []domain.Profile {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]domain.Profile, 0, len(v.profiles))
	for _, e := range v.profiles {
		if !e.deleted {
			out = append(out, e.p)
		}
	}
	return out
}

// User returns a live user.
func (v *View) User(id string) (domain.User, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.users[id]
	if !ok {
		return domain.User{}, false
	}
	return v.user(e), !e.deleted
}

// UserVersion returns the stored version of a user, deleted or not.
func (v *View) UserVersion(id string) (version int64, created time.Time, live bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.users[id]
	if !ok {
		return 0, time.Time{}, false
	}
	return e.version, e.created.time(), !e.deleted
}

// UserByEmail returns the live user holding a normalized address.
func (v *View) UserByEmail(email string) (domain.User, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.byEmail[email]
	if !ok {
		return domain.User{}, false
	}
	return v.user(e), !e.deleted
}

// Session returns a session by id (active or not).
func (v *View) Session(id string) (domain.SessionState, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, ok := v.sessions[id]
	if !ok {
		return domain.SessionState{}, false
	}
	return v.state(r), true
}

// SessionByToken returns the session a session token names.
func (v *View) SessionByToken(token string) (domain.SessionState, bool) {
	k := keyOfToken(token)
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, ok := v.byToken[k]
	if !ok {
		return domain.SessionState{}, false
	}
	return v.state(r), true
}

// PutProfile applies a profile state if it is newer than the one held.
func (v *View) PutProfile(p domain.Profile, deleted bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur, ok := v.profiles[p.ProfileID]; ok && cur.p.Version >= p.Version {
		return
	}
	v.profiles[p.ProfileID] = profileEntry{p: p, deleted: deleted}
}

// PutUser applies a user state if it is newer than the one held.
func (v *View) PutUser(u domain.User, deleted bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	cur, ok := v.users[u.UserID]
	if ok {
		if cur.version >= u.Version {
			return
		}
		cur.addresses(func(e string) {
			if k, ok := emailKey(e); ok && v.byEmail[k] == cur {
				delete(v.byEmail, k)
			}
		})
	}
	r := v.packUser(u, deleted)
	if ok {
		// Updated in place (under the write lock): the indexes and the
		// sessions keep pointing at it.
		r.id = cur.id
		*cur = *r
		r = cur
	} else {
		v.users[r.id] = r
	}
	if !deleted {
		r.addresses(func(e string) {
			if k, ok := emailKey(e); ok {
				v.byEmail[k] = r
			}
		})
	}
}

// emailKey is an address's matching form; when that is the address itself
// (lower case ASCII), the same string, so the index shares the record's.
func emailKey(email string) (string, bool) {
	k, err := domain.NormalizeEmail(email)
	if err != nil {
		return "", false
	}
	if k == email {
		return email, true
	}
	return k, true
}

// PutSession applies a session state if its revision is newer.
func (v *View) PutSession(st domain.SessionState) { v.putSession(st, nil) }

// putSession is PutSession for a state whose custom claims the caller has
// encoded already (claims, as json.Marshal gives them; nil: not encoded).
func (v *View) putSession(st domain.SessionState, claims []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := st.Session.SessionID
	cur, ok := v.sessions[id]
	if ok && cur.revision >= st.Revision {
		return
	}
	r := v.packSession(st, claims)
	if ok {
		r.id = cur.id
		*cur = *r // in place: the by-token entry keeps pointing at it
		return
	}
	v.sessions[r.id] = r
	v.byToken[keyOfToken(v.tokenOf(id))] = r
	v.indexUserSession(r.userID, r.id)
}

// holdsActive reports whether the view holds session id at revision rev
// exactly (so what Session returns is that revision), active at now.
func (v *View) holdsActive(id string, rev int64, now time.Time) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, ok := v.sessions[id]
	return ok && r.revision == rev && !r.revoked && now.Before(r.expires.time())
}

// Sweep forgets sessions that ended before cutoff.
func (v *View) Sweep(cutoff time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	end := toStamp(cutoff)
	for id, r := range v.sessions {
		if r.expires < end {
			delete(v.sessions, id)
			delete(v.byToken, keyOfToken(v.tokenOf(id)))
			v.unindexUserSession(r.userID, id)
			n++
		}
	}
	return n
}

// Counts returns how many profiles, users and sessions are held (for
// metrics).
func (v *View) Counts() (profiles, users, sessions int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.profiles), len(v.users), len(v.sessions)
}

// ApplyEvent applies one event read from the events stream at seq. Events
// the view does not track only advance the sequence.
func (v *View) ApplyEvent(seq uint64, e domain.Event) error {
	err := v.applyEvent(e)
	v.mu.Lock()
	if seq > v.seq {
		v.seq = seq
	}
	v.mu.Unlock()
	v.changed.Broadcast()
	return err
}

// MarkSeq records that every event up to seq has been applied.
func (v *View) MarkSeq(seq uint64) {
	v.mu.Lock()
	if seq > v.seq {
		v.seq = seq
	}
	v.mu.Unlock()
	v.changed.Broadcast()
}

// Seq is the last events-stream sequence applied.
func (v *View) Seq() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.seq
}

// WaitSeq waits until events up to seq are applied, or ctx ends.
func (v *View) WaitSeq(ctx context.Context, seq uint64) error {
	stop := context.AfterFunc(ctx, func() {
		v.mu.Lock()
		v.changed.Broadcast()
		v.mu.Unlock()
	})
	defer stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	for v.seq < seq {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("view at %d, waiting for %d: %w", v.seq, seq, err)
		}
		v.changed.Wait()
	}
	return nil
}

func (v *View) applyEvent(e domain.Event) error {
	switch e.Type {
	case domain.EventProfileCreated, domain.EventProfileUpdated, domain.EventProfileDeleted:
		var d ProfileEventData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.Profile == nil {
			return fmt.Errorf("event %s: bad profile data", e.ID)
		}
		p, err := domain.NewProfile(d.Profile.ProfileSpec, domain.ProfileRules{AllowHTTPJWKS: true}, d.Profile.Version, d.Profile.CreatedAt, d.Profile.UpdatedAt)
		if err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		v.PutProfile(p, e.Type == domain.EventProfileDeleted)
	case domain.EventUserCreated, domain.EventUserUpdated, domain.EventUserDeleted:
		if v.holdsUser(e.Data) {
			return nil
		}
		var d UserEventData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.User == nil {
			return fmt.Errorf("event %s: bad user data", e.ID)
		}
		v.PutUser(*d.User, e.Type == domain.EventUserDeleted)
	case domain.EventSessionCreated, domain.EventSessionUpdated:
		if v.holdsSession(e.Data) {
			return nil
		}
		var d AttestEventData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.Session == nil {
			return fmt.Errorf("event %s: bad session data", e.ID)
		}
		v.PutSession(domain.SessionState{Session: *d.Session, Revision: d.SessionRevision})
	case domain.EventSessionRevoked:
		if v.holdsSession(e.Data) {
			return nil
		}
		var d SessionRevokedData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.Session == nil {
			return fmt.Errorf("event %s: bad session data", e.ID)
		}
		v.PutSession(domain.SessionState{Session: *d.Session, Revision: d.SessionRevision, Revoked: true})
	}
	return nil
}

// holdsSession reports whether the view holds the event's session at its
// revision or a newer one, reading only those two fields: most session
// events a worker applies are its own (applied when made, then read back
// from the stream), and decoding the whole session was most of their cost.
// They are read strictly (domain.DecodeStrictBusPartial): data with a
// member twice, or a member named as one of them in another case, is not
// held, and the full decode that follows refuses it.
func (v *View) holdsSession(data json.RawMessage) bool {
	var d struct {
		Session *struct {
			SessionID string `json:"session_id"`
		} `json:"session"`
		SessionRevision int64 `json:"session_revision"`
	}
	if domain.DecodeStrictBusPartial(data, &d, 0) != nil || d.Session == nil {
		return false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	cur, ok := v.sessions[d.Session.SessionID]
	return ok && cur.revision >= d.SessionRevision
}

// holdsUser is holdsSession for user events.
func (v *View) holdsUser(data json.RawMessage) bool {
	var d struct {
		User *struct {
			UserID  string `json:"user_id"`
			Version int64  `json:"version"`
		} `json:"user"`
	}
	if domain.DecodeStrictBusPartial(data, &d, 0) != nil || d.User == nil {
		return false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	cur, ok := v.users[d.User.UserID]
	return ok && cur.version >= d.User.Version
}
