package client

import (
	"context"
	"fmt"
)

// The reads service answers on <prefix>.reads.* (core NATS request/reply,
// like the sessions service): profiles, users and sessions as the workers'
// views hold them, never a secret. Replies carry status_code and, on
// failure, error_type and error_message. This service is being added to
// the worker alongside this client; against a worker without it every read
// fails with ErrNoResponders.

// readReply is every reply of the reads service.
type readReply struct {
	Profile    *Profile     `json:"profile"`
	Profiles   []Profile    `json:"profiles"`
	User       *User        `json:"user"`
	Users      []User       `json:"users"`
	Session    *Session     `json:"session"`
	Sessions   []Session    `json:"sessions"`
	Keys       []SigningKey `json:"keys"`
	NextCursor string       `json:"next_cursor"`
}

// maxPages bounds the pages ListProfiles and ListSessions follow, against a
// server whose cursor never ends.
const maxPages = 10000

// GetProfile returns a profile by id (<prefix>.reads.profiles.get);
// unknown or deleted: ErrTrustedTokenProfileNotFound.
func (c *Client) GetProfile(ctx context.Context, profileID string) (*Profile, error) {
	r, err := call[readReply](ctx, c, "reads.profiles.get", map[string]string{"profile_id": profileID})
	if err != nil {
		return nil, err
	}
	return present(c, r.Profile, "reads.profiles.get", "profile")
}

// ListProfiles returns every live profile (<prefix>.reads.profiles.list),
// following next_cursor when the service pages its answer.
func (c *Client) ListProfiles(ctx context.Context) ([]Profile, error) {
	return all(ctx, c, "reads.profiles.list", map[string]any{}, func(r *readReply) []Profile { return r.Profiles })
}

// GetUser returns a user by id (<prefix>.reads.users.get), of any status;
// unknown or deleted: ErrUserNotFound.
func (c *Client) GetUser(ctx context.Context, userID string) (*User, error) {
	r, err := call[readReply](ctx, c, "reads.users.get", map[string]string{"user_id": userID})
	if err != nil {
		return nil, err
	}
	return present(c, r.User, "reads.users.get", "user")
}

// GetUserByEmail returns the user holding an email address, matched as
// attest matches a token's email (ASCII case folded); none:
// ErrUserNotFound.
func (c *Client) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	r, err := call[readReply](ctx, c, "reads.users.get", map[string]string{"email": email})
	if err != nil {
		return nil, err
	}
	return present(c, r.User, "reads.users.get", "user")
}

// ListUsersRequest asks for one page of users. Limit 0 lets the service
// choose; Cursor is "" for the first page, else an earlier NextCursor.
type ListUsersRequest struct {
	Limit  int
	Cursor string
}

// UsersPage is one page of users; NextCursor is "" on the last page.
type UsersPage struct {
	Users      []User
	NextCursor string
}

// ListUsers returns one page of live users (<prefix>.reads.users.list) in
// user_id order.
func (c *Client) ListUsers(ctx context.Context, req ListUsersRequest) (*UsersPage, error) {
	body := map[string]any{}
	if req.Limit != 0 {
		body["limit"] = req.Limit
	}
	if req.Cursor != "" {
		body["cursor"] = req.Cursor
	}
	r, err := call[readReply](ctx, c, "reads.users.list", body)
	if err != nil {
		return nil, err
	}
	users := r.Users
	if users == nil {
		users = []User{}
	}
	return &UsersPage{Users: users, NextCursor: r.NextCursor}, nil
}

// ListSessions returns the usable sessions of a user
// (<prefix>.reads.sessions.list), following next_cursor when the service
// pages its answer; unknown user: ErrUserNotFound.
func (c *Client) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	return all(ctx, c, "reads.sessions.list", map[string]any{"user_id": userID}, func(r *readReply) []Session { return r.Sessions })
}

// GetSession returns a session by id while it is usable
// (<prefix>.reads.sessions.get): not revoked, not expired, its user
// active; otherwise ErrSessionNotFound.
func (c *Client) GetSession(ctx context.Context, sessionID string) (*Session, error) {
	r, err := call[readReply](ctx, c, "reads.sessions.get", map[string]string{"session_id": sessionID})
	if err != nil {
		return nil, err
	}
	return present(c, r.Session, "reads.sessions.get", "session")
}

// present refuses a 200 reply that lacks its object.
func present[T any](c *Client, v *T, op, member string) (*T, error) {
	if v == nil {
		return nil, &TransportError{Op: op, Subject: c.subject(op), Err: ErrMalformedReply, Cause: fmt.Errorf("the reply has no %s", member)}
	}
	return v, nil
}

// all collects every page of a list: the first request as given, then the
// same with "cursor" set to each next_cursor until it is empty.
func all[T any](ctx context.Context, c *Client, op string, req map[string]any, items func(*readReply) []T) ([]T, error) {
	out := []T{}
	seen := map[string]bool{}
	for range maxPages {
		r, err := call[readReply](ctx, c, op, req)
		if err != nil {
			return nil, err
		}
		out = append(out, items(r)...)
		if r.NextCursor == "" {
			return out, nil
		}
		if seen[r.NextCursor] {
			return nil, &TransportError{Op: op, Subject: c.subject(op), Err: ErrMalformedReply, Cause: fmt.Errorf("next_cursor %q repeats", r.NextCursor)}
		}
		seen[r.NextCursor] = true
		req["cursor"] = r.NextCursor
	}
	return nil, &TransportError{Op: op, Subject: c.subject(op), Err: ErrMalformedReply, Cause: fmt.Errorf("more than %d pages", maxPages)}
}
