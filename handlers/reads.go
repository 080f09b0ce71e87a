package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Paging and size bounds of the reads service.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
	// DefaultMaxReplyBytes bounds the encoded items of one list reply when
	// Reads.MaxReplyBytes is not set.
	DefaultMaxReplyBytes = 512 << 10
)

// Reads answers the reads service (<prefix>.reads.*) from the in-memory
// view: profiles, users and sessions, never a secret (profiles hold only
// public keys, sessions never carry their token or a JWT). Error messages
// never echo a request's values: a caller may paste a token where an id
// belongs. A lookup that misses catches the view up once before answering
// not found, so a change made a moment ago through another worker is seen;
// lists answer from the view as it is. Nothing here reads the store.
type Reads struct {
	View    *View
	Barrier Barrier
	Now     func() time.Time
	// SessionKeys answers reads.keys.list (nil: an empty list).
	SessionKeys KeyLister
	// MaxReplyBytes bounds the encoded items of one list reply (0:
	// DefaultMaxReplyBytes): a page ends early, with a next_cursor, rather
	// than make a reply the bus cannot carry.
	MaxReplyBytes int
}

// ProfileGetRequest is the request of reads.profiles.get.
type ProfileGetRequest struct {
	ProfileID string `json:"profile_id"`
}

// PageRequest is the request of reads.profiles.list and reads.users.list.
type PageRequest struct {
	Limit  *int   `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// UserGetRequest is the request of reads.users.get: exactly one of user_id
// and email.
type UserGetRequest struct {
	UserID string `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"`
}

// SessionGetRequest is the request of reads.sessions.get.
type SessionGetRequest struct {
	SessionID string `json:"session_id"`
}

// SessionListRequest is the request of reads.sessions.list.
type SessionListRequest struct {
	UserID string `json:"user_id"`
	Limit  *int   `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// ReadReply is the reply of the reads service. A list reply always carries
// its list (possibly empty) and next_cursor ("" on the last page).
type ReadReply struct {
	StatusCode   int               `json:"status_code"`
	Profile      *domain.Profile   `json:"profile,omitempty"`
	Profiles     *[]domain.Profile `json:"profiles,omitempty"`
	User         *domain.User      `json:"user,omitempty"`
	Users        *[]domain.User    `json:"users,omitempty"`
	Session      *domain.Session   `json:"session,omitempty"`
	Sessions     *[]domain.Session `json:"sessions,omitempty"`
	Keys         *[]domain.KeyInfo `json:"keys,omitempty"`
	NextCursor   *string           `json:"next_cursor,omitempty"`
	ErrorType    string            `json:"error_type,omitempty"`
	ErrorMessage string            `json:"error_message,omitempty"`

	cause error // the internal reason, for the worker's log; never sent
}

// Cause returns the internal reason of a failed reply (nil on success).
func (r ReadReply) Cause() error { return r.cause }

func readError(err error) ReadReply {
	e := domain.AsError(err)
	return ReadReply{StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message, cause: err}
}

// ProfileGet answers reads.profiles.get: a live profile by id.
func (h *Reads) ProfileGet(ctx context.Context, data []byte) ReadReply {
	var req ProfileGetRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	if err := checkID("profile_id", req.ProfileID); err != nil {
		return readError(err)
	}
	p, ok, err := lookupOnce(ctx, h.Barrier, func() (domain.Profile, bool) { return h.View.Profile(req.ProfileID) })
	if err != nil {
		return readError(err)
	}
	if !ok {
		return readError(domain.ErrProfileNotFound.With("no trusted token profile has this profile_id"))
	}
	return ReadReply{StatusCode: 200, Profile: &p}
}

// ProfileList answers reads.profiles.list: live profiles in profile_id
// order, a page at a time.
func (h *Reads) ProfileList(_ context.Context, data []byte) ReadReply {
	var req PageRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	limit, err := pageLimit(req.Limit, req.Cursor)
	if err != nil {
		return readError(err)
	}
	items, more := h.View.ProfilesPage(req.Cursor, limit)
	items, more = fitPage(items, more, h.budget())
	next := ""
	if more {
		next = items[len(items)-1].ProfileID
	}
	return ReadReply{StatusCode: 200, Profiles: &items, NextCursor: &next}
}

// UserGet answers reads.users.get: a live user (of any status) by user_id,
// or by email matched as attest matches a token's email (the key of
// domain.NormalizeEmail).
func (h *Reads) UserGet(ctx context.Context, data []byte) ReadReply {
	var req UserGetRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	var find func() (domain.User, bool)
	switch {
	case (req.UserID == "") == (req.Email == ""):
		return readError(domain.ErrInvalidRequest.With("give exactly one of user_id, email"))
	case req.UserID != "":
		if err := checkID("user_id", req.UserID); err != nil {
			return readError(err)
		}
		find = func() (domain.User, bool) { return h.View.User(req.UserID) }
	default:
		email, err := domain.NormalizeEmail(req.Email)
		if err != nil {
			return readError(err)
		}
		find = func() (domain.User, bool) { return h.View.UserByEmail(email) }
	}
	u, ok, err := lookupOnce(ctx, h.Barrier, find)
	if err != nil {
		return readError(err)
	}
	if !ok {
		return readError(domain.ErrUserNotFound.With("no user has this user_id or email"))
	}
	return ReadReply{StatusCode: 200, User: &u}
}

// UserList answers reads.users.list: live users (of any status) in user_id
// order, a page at a time.
func (h *Reads) UserList(_ context.Context, data []byte) ReadReply {
	var req PageRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	limit, err := pageLimit(req.Limit, req.Cursor)
	if err != nil {
		return readError(err)
	}
	items, more := h.View.UsersPage(req.Cursor, limit)
	items, more = fitPage(items, more, h.budget())
	next := ""
	if more {
		next = items[len(items)-1].UserID
	}
	return ReadReply{StatusCode: 200, Users: &items, NextCursor: &next}
}

// SessionGet answers reads.sessions.get: a session by id while it is
// usable, that is while authenticate would accept it (not revoked, not
// expired, its user active).
func (h *Reads) SessionGet(ctx context.Context, data []byte) ReadReply {
	var req SessionGetRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	if err := checkID("session_id", req.SessionID); err != nil {
		return readError(err)
	}
	now := h.Now()
	s, ok, err := lookupOnce(ctx, h.Barrier, func() (domain.Session, bool) {
		st, ok := h.View.Session(req.SessionID)
		if !ok || !h.usable(st, now) {
			return domain.Session{}, false
		}
		return st.Session, true
	})
	if err != nil {
		return readError(err)
	}
	if !ok {
		return readError(domain.ErrSessionNotFound.With("no active session has this session_id"))
	}
	return ReadReply{StatusCode: 200, Session: &s}
}

// SessionList answers reads.sessions.list: a live user's usable sessions
// in session_id order, a page at a time (none for a user who is not
// active: authenticate refuses them).
func (h *Reads) SessionList(ctx context.Context, data []byte) ReadReply {
	var req SessionListRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	if err := checkID("user_id", req.UserID); err != nil {
		return readError(err)
	}
	limit, err := pageLimit(req.Limit, req.Cursor)
	if err != nil {
		return readError(err)
	}
	if _, ok, err := lookupOnce(ctx, h.Barrier, func() (domain.User, bool) { return h.View.User(req.UserID) }); err != nil {
		return readError(err)
	} else if !ok {
		return readError(domain.ErrUserNotFound.With("no user has this user_id"))
	}
	now := h.Now()
	items := []domain.Session{}
	more := false
	for _, st := range h.View.SessionsOfUser(req.UserID) {
		if st.Session.SessionID <= req.Cursor || !h.usable(st, now) {
			continue
		}
		if len(items) == limit {
			more = true
			break
		}
		items = append(items, st.Session)
	}
	items, more = fitPage(items, more, h.budget())
	next := ""
	if more {
		next = items[len(items)-1].SessionID
	}
	return ReadReply{StatusCode: 200, Sessions: &items, NextCursor: &next}
}

// usable reports whether authenticate would accept the session at now.
func (h *Reads) usable(st domain.SessionState, now time.Time) bool {
	if !st.Active(now) {
		return false
	}
	u, ok := h.View.User(st.Session.UserID)
	return ok && u.Active()
}

func (h *Reads) budget() int {
	if h.MaxReplyBytes > 0 {
		return h.MaxReplyBytes
	}
	return DefaultMaxReplyBytes
}

// lookupOnce runs find, and once more after b catches the view up when it
// misses: one catch-up at most per request.
func lookupOnce[T any](ctx context.Context, b Barrier, find func() (T, bool)) (T, bool, error) {
	if v, ok := find(); ok {
		return v, true, nil
	}
	if err := b.CatchUp(ctx); err != nil {
		var zero T
		return zero, false, err
	}
	v, ok := find()
	return v, ok, nil
}

// checkID refuses an id outside the alphabet every id of the contract uses.
func checkID(name, id string) error {
	if !domain.ValidCommandID(id) {
		return domain.ErrInvalidRequest.With("%s must be 1 to 128 characters of A-Za-z0-9._:-", name)
	}
	return nil
}

// pageLimit checks a page request: limit 1 to MaxPageLimit (absent:
// DefaultPageLimit), a cursor that is empty or an id as next_cursor gives.
func pageLimit(limit *int, cursor string) (int, error) {
	if cursor != "" && !domain.ValidCommandID(cursor) {
		return 0, domain.ErrInvalidRequest.With("cursor must be a next_cursor from an earlier reply")
	}
	if limit == nil {
		return DefaultPageLimit, nil
	}
	if *limit < 1 || *limit > MaxPageLimit {
		return 0, domain.ErrInvalidRequest.With("limit must be between 1 and %d", MaxPageLimit)
	}
	return *limit, nil
}

// fitPage cuts a page at the first item that would take its encoded items
// past budget bytes (keeping at least one), and reports whether more
// follow.
func fitPage[T any](items []T, more bool, budget int) ([]T, bool) {
	total := 0
	for i, it := range items {
		b, _ := json.Marshal(it)
		total += len(b) + 1
		if total > budget && i > 0 {
			return items[:i], true
		}
	}
	return items, more
}
