package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"runtime"
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
// Users and sessions are held as compact records (viewrec.go) outside the
// Go heap (viewmem.go), decoded into domain values under the read lock when
// asked for; each lookup key (user id, matching email, session id, session
// token hash) has one index entry, naming the record's slot, and a user's
// sessions are a list whose first the by-user index names.
type View struct {
	mu       sync.RWMutex
	changed  *sync.Cond
	seq      uint64
	profiles map[string]profileEntry
	*viewData
	syms    symtab
	buf     []byte // scratch for encoding a record, under the write lock
	seed    maphash.Seed
	tokenOf func(sessionID string) string
}

// viewData is what the view holds outside the Go heap (viewmem.go):
// records, and the indexes to them by key.
type viewData struct {
	o              offheap
	users          recs
	sessions       recs
	userByID       index
	userByEmail    index // by each address's matching form
	sessionByID    index
	sessionByToken index // by the SHA-256 of the session token
	sessionsByUser index // by user id: the first of the user's sessions
	userSessions   chain // the rest of them, linked from the first
}

func (d *viewData) release() {
	d.users.release()
	d.sessions.release()
	d.userSessions.release()
	for _, x := range []*index{&d.userByID, &d.userByEmail, &d.sessionByID, &d.sessionByToken, &d.sessionsByUser} {
		x.release()
	}
}

type profileEntry struct {
	p       domain.Profile
	deleted bool
}

// NewView returns an empty view. tokenOf derives a session's token, so the
// view can index sessions by token hash.
func NewView(tokenOf func(sessionID string) string) *View {
	d := &viewData{}
	d.users, d.sessions = newRecs(&d.o), newRecs(&d.o)
	d.userSessions.o = &d.o
	for _, x := range []*index{&d.userByID, &d.userByEmail, &d.sessionByID, &d.sessionByToken, &d.sessionsByUser} {
		x.o = &d.o
	}
	v := &View{
		profiles: map[string]profileEntry{},
		viewData: d,
		syms:     newSymtab(),
		seed:     maphash.MakeSeed(),
		tokenOf:  tokenOf,
	}
	v.changed = sync.NewCond(&v.mu)
	// The mapped memory goes back when the view is collected (a worker's
	// lives as long as the process; tests make many).
	runtime.AddCleanup(v, (*viewData).release, d)
	return v
}

// OffHeapBytes is how much memory the view has mapped outside the Go heap.
func (v *View) OffHeapBytes() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.o.mapped
}

func (v *View) hash(s string) uint64      { return maphash.String(v.seed, s) }
func (v *View) hashBytes(b []byte) uint64 { return maphash.Bytes(v.seed, b) }

// userSlot finds the record of user id.
func (v *View) userSlot(id string) (uint32, bool) {
	return v.userByID.find(v.hash(id), func(s uint32) bool { return string(userIDOf(v.users.get(s))) == id })
}

// emailOwner finds the user record that byEmail gives for key.
func (v *View) emailOwner(h uint64, key []byte) (uint32, bool) {
	return v.userByEmail.find(h, func(s uint32) bool {
		found := false
		emailKeys(v.users.get(s), func(k []byte) { found = found || bytes.Equal(k, key) })
		return found
	})
}

// sessionSlot finds the record of session id.
func (v *View) sessionSlot(id string) (uint32, bool) {
	return v.sessionByID.find(v.hash(id), func(s uint32) bool { return string(sessionIDOf(v.sessions.get(s))) == id })
}

// firstSession finds the session the by-user index names for user uid.
func (v *View) firstSession(h uint64, uid string) (uint32, bool) {
	return v.sessionsByUser.find(h, func(s uint32) bool {
		u, _ := v.sessionUserOf(v.sessions.get(s))
		return string(u) == uid
	})
}

// linkUserSession puts session slot, in no user's list, in user uid's.
func (v *View) linkUserSession(slot uint32, uid string) {
	v.userSessions.fit(v.sessions.nslots)
	h := v.hash(uid)
	if first, ok := v.firstSession(h, uid); ok {
		v.userSessions.insertAfter(first, slot)
		return
	}
	v.userSessions.setNext(slot, none)
	v.userSessions.setPrev(slot, none)
	v.sessionsByUser.add(h, slot)
}

// unlinkUserSession takes session slot out of its user's list (uid, the
// user's id, may alias the records: it is read before anything changes).
func (v *View) unlinkUserSession(slot uint32, uid []byte) {
	first := v.userSessions.prev(slot) == none
	next := v.userSessions.unlink(slot)
	if first {
		h := v.hashBytes(uid)
		v.sessionsByUser.del(h, slot)
		if next != none {
			v.sessionsByUser.add(h, next)
		}
	}
}

// tokenHash is the by-token index's hash of a token key prefix.
func (v *View) tokenHash(prefix []byte) uint64 { return v.hashBytes(prefix) }

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
	slot, ok := v.userSlot(id)
	if !ok {
		return domain.User{}, false
	}
	p := v.users.get(slot)
	return v.user(p), !userDeleted(p)
}

// UserVersion returns the stored version of a user, deleted or not.
func (v *View) UserVersion(id string) (version int64, created time.Time, live bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	slot, ok := v.userSlot(id)
	if !ok {
		return 0, time.Time{}, false
	}
	p := v.users.get(slot)
	return userVersion(p), userCreated(p).time(), !userDeleted(p)
}

// UserByEmail returns the live user holding a normalized address.
func (v *View) UserByEmail(email string) (domain.User, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	slot, ok := v.emailOwner(v.hash(email), []byte(email))
	if !ok {
		return domain.User{}, false
	}
	return v.user(v.users.get(slot)), true
}

// Session returns a session by id (active or not).
func (v *View) Session(id string) (domain.SessionState, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	slot, ok := v.sessionSlot(id)
	if !ok {
		return domain.SessionState{}, false
	}
	return v.state(v.sessions.get(slot)), true
}

// SessionByToken returns the session a session token names.
func (v *View) SessionByToken(token string) (domain.SessionState, bool) {
	k := keyOfToken(token)
	v.mu.RLock()
	defer v.mu.RUnlock()
	prefix := k[:tokenPrefix]
	slot, ok := v.sessionByToken.find(v.tokenHash(prefix), func(s uint32) bool {
		return bytes.Equal(sessionTokenPrefix(v.sessions.get(s)), prefix)
	})
	if !ok {
		return domain.SessionState{}, false
	}
	return v.state(v.sessions.get(slot)), true
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
	slot, ok := v.userSlot(u.UserID)
	if ok {
		cur := v.users.get(slot)
		if userVersion(cur) >= u.Version {
			return
		}
		// The addresses it held lead to it no more (those that another
		// user took since lead to that one).
		emailKeys(cur, func(k []byte) { v.userByEmail.del(v.hashBytes(k), slot) })
		v.users.replace(slot, v.packUser(u, deleted))
	} else {
		slot = v.users.add(v.packUser(u, deleted))
		v.userByID.add(v.hash(u.UserID), slot)
	}
	if deleted {
		return
	}
	// Each address leads to this user, and to no other that held it.
	emailKeys(v.users.get(slot), func(k []byte) {
		h := v.hashBytes(k)
		if other, ok := v.emailOwner(h, k); ok {
			v.userByEmail.del(h, other)
		}
		v.userByEmail.add(h, slot)
	})
}

// emailKey is an address's matching form: what byEmail is keyed by.
func emailKey(email string) (string, bool) {
	k, err := domain.NormalizeEmail(email)
	return k, err == nil
}

// PutSession applies a session state if its revision is newer.
func (v *View) PutSession(st domain.SessionState) { v.putSession(st, nil) }

// putSession is PutSession for a state whose custom claims the caller has
// encoded already (claims, as json.Marshal gives them; nil: not encoded).
func (v *View) putSession(st domain.SessionState, claims []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := st.Session.SessionID
	slot, ok := v.sessionSlot(id)
	if !ok {
		slot = v.sessions.add(v.packSession(st, claims, nil))
		v.sessionByID.add(v.hash(id), slot)
		v.sessionByToken.add(v.tokenHash(sessionTokenPrefix(v.sessions.get(slot))), slot)
		v.linkUserSession(slot, st.Session.UserID)
		return
	}
	cur := v.sessions.get(slot)
	if sessionRevision(cur) >= st.Revision {
		return
	}
	// A session never changes user; if a state said otherwise, the
	// by-user index follows it rather than keep a stale entry.
	if uid, _ := v.sessionUserOf(cur); string(uid) != st.Session.UserID {
		v.unlinkUserSession(slot, uid)
		v.linkUserSession(slot, st.Session.UserID)
	}
	v.sessions.replace(slot, v.packSession(st, claims, sessionTokenPrefix(cur)))
}

// holdsActive reports whether the view holds session id at revision rev
// exactly (so what Session returns is that revision), active at now.
func (v *View) holdsActive(id string, rev int64, now time.Time) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	slot, ok := v.sessionSlot(id)
	if !ok {
		return false
	}
	p := v.sessions.get(slot)
	return sessionRevision(p) == rev && !sessionRevoked(p) && now.Before(sessionExpires(p).time())
}

// Sweep forgets sessions that ended before cutoff.
func (v *View) Sweep(cutoff time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	end := toStamp(cutoff)
	var ended []uint32
	v.sessions.each(func(slot uint32, p []byte) bool {
		if sessionExpires(p) < end {
			ended = append(ended, slot)
		}
		return true
	})
	for _, slot := range ended {
		p := v.sessions.get(slot)
		uid, _ := v.sessionUserOf(p)
		v.sessionByID.del(v.hashBytes(sessionIDOf(p)), slot)
		v.sessionByToken.del(v.tokenHash(sessionTokenPrefix(p)), slot)
		v.unlinkUserSession(slot, uid)
		v.sessions.remove(slot)
	}
	return len(ended)
}

// Counts returns how many profiles, users and sessions are held (for
// metrics).
func (v *View) Counts() (profiles, users, sessions int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.profiles), v.users.live, v.sessions.live
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
	slot, ok := v.sessionSlot(d.Session.SessionID)
	return ok && sessionRevision(v.sessions.get(slot)) >= d.SessionRevision
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
	slot, ok := v.userSlot(d.User.UserID)
	return ok && userVersion(v.users.get(slot)) >= d.User.Version
}
