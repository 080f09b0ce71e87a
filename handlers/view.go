package handlers

import (
	"context"
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
type View struct {
	mu       sync.RWMutex
	changed  *sync.Cond
	seq      uint64
	profiles map[string]profileEntry
	users    map[string]userEntry
	byEmail  map[string]string
	sessions map[string]domain.SessionState
	byToken  map[string]string
	byUser   map[string]map[string]struct{} // user id -> its session ids
	tokenOf  func(sessionID string) string
}

type profileEntry struct {
	p       domain.Profile
	deleted bool
}

type userEntry struct {
	u       domain.User
	deleted bool
}

// NewView returns an empty view. tokenOf derives a session's token, so the
// view can index sessions by token hash.
func NewView(tokenOf func(sessionID string) string) *View {
	v := &View{
		profiles: map[string]profileEntry{},
		users:    map[string]userEntry{},
		byEmail:  map[string]string{},
		sessions: map[string]domain.SessionState{},
		byToken:  map[string]string{},
		byUser:   map[string]map[string]struct{}{},
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
	return e.u, ok && !e.deleted
}

// UserVersion returns the stored version of a user, deleted or not.
func (v *View) UserVersion(id string) (version int64, created time.Time, live bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.users[id]
	return e.u.Version, e.u.CreatedAt, ok && !e.deleted
}

// UserByEmail returns the live user holding a normalized address.
func (v *View) UserByEmail(email string) (domain.User, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	id, ok := v.byEmail[email]
	if !ok {
		return domain.User{}, false
	}
	e := v.users[id]
	return e.u, !e.deleted
}

// Session returns a session by id (active or not).
func (v *View) Session(id string) (domain.SessionState, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s, ok := v.sessions[id]
	return s, ok
}

// SessionByToken returns the session a session token names.
func (v *View) SessionByToken(token string) (domain.SessionState, bool) {
	h := domain.TokenHash(token)
	v.mu.RLock()
	defer v.mu.RUnlock()
	id, ok := v.byToken[h]
	if !ok {
		return domain.SessionState{}, false
	}
	s, ok := v.sessions[id]
	return s, ok
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
	if cur, ok := v.users[u.UserID]; ok {
		if cur.u.Version >= u.Version {
			return
		}
		for _, e := range cur.u.NormalizedEmails() {
			if v.byEmail[e] == u.UserID {
				delete(v.byEmail, e)
			}
		}
	}
	v.users[u.UserID] = userEntry{u: u, deleted: deleted}
	if !deleted {
		for _, e := range u.NormalizedEmails() {
			v.byEmail[e] = u.UserID
		}
	}
}

// PutSession applies a session state if its revision is newer.
func (v *View) PutSession(st domain.SessionState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := st.Session.SessionID
	if cur, ok := v.sessions[id]; ok && cur.Revision >= st.Revision {
		return
	}
	if _, ok := v.sessions[id]; !ok {
		v.byToken[domain.TokenHash(v.tokenOf(id))] = id
		v.indexUserSession(st.Session.UserID, id)
	}
	v.sessions[id] = st
}

// Sweep forgets sessions that ended before cutoff.
func (v *View) Sweep(cutoff time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for id, st := range v.sessions {
		if st.Session.ExpiresAt.Before(cutoff) {
			delete(v.sessions, id)
			delete(v.byToken, domain.TokenHash(v.tokenOf(id)))
			v.unindexUserSession(st.Session.UserID, id)
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
// the view does not track only advance the sequence. The data is decoded
// strictly (exact names, no duplicates, bounded), as everything read back
// from the bus.
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
		var d UserEventData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.User == nil {
			return fmt.Errorf("event %s: bad user data", e.ID)
		}
		v.PutUser(*d.User, e.Type == domain.EventUserDeleted)
	case domain.EventSessionCreated, domain.EventSessionUpdated:
		var d AttestEventData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.Session == nil {
			return fmt.Errorf("event %s: bad session data", e.ID)
		}
		v.PutSession(domain.SessionState{Session: *d.Session, Revision: d.SessionRevision})
	case domain.EventSessionRevoked:
		var d SessionRevokedData
		if err := domain.DecodeStrictBus(e.Data, &d, 0); err != nil || d.Session == nil {
			return fmt.Errorf("event %s: bad session data", e.ID)
		}
		v.PutSession(domain.SessionState{Session: *d.Session, Revision: d.SessionRevision, Revoked: true})
	}
	return nil
}
