package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tat-worker/attest/domain"
)

// UserChange applies tat.users.commands. An address belongs to one user at
// most: each is claimed by an insert under a unique key before the user is
// written, and released when the user lets it go.
type UserChange struct {
	admin
	Store UserStore
	// Sessions ends the sessions of a user a change deletes or makes
	// inactive (see endSessions); nil ends none.
	Sessions *Sessions
}

// NewUserChange wires a UserChange.
func NewUserChange(v *View, b Barrier, done *Completer, now func() time.Time, store UserStore) *UserChange {
	h := &UserChange{admin: admin{View: v, Barrier: b, Done: done, Now: now}, Store: store}
	h.applyState = h.store
	return h
}

// store writes the user a created, updated or deleted event names, and
// releases every email claim of that user the new state does not list.
func (h *UserChange) store(ctx context.Context, e domain.Event) error {
	if e.Type == domain.EventUserRejected {
		return nil
	}
	var d UserEventData
	if err := json.Unmarshal(e.Data, &d); err != nil || d.User == nil {
		return fmt.Errorf("event %s names no user", e.ID)
	}
	deleted := e.Type == domain.EventUserDeleted
	if err := h.Store.PutUser(ctx, *d.User, deleted); err != nil {
		return err
	}
	var keep []string
	if !deleted {
		keep = d.User.NormalizedEmails()
	}
	return h.Store.ReleaseOthers(ctx, d.User.UserID, keep)
}

// Handle applies one user command to its one outcome; an error is
// transient.
func (h *UserChange) Handle(ctx context.Context, in Input) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	var cmd domain.UserCommand
	out, err := h.handle(ctx, command{"user", in, &cmd, func() string { return cmd.ChangeID }}, func() error { return cmd.Validate() },
		func(id string) (Output, error) { return h.apply(ctx, id, cmd) },
		func(id string, err error) (Output, error) { return h.reject(ctx, id, cmd, err) })
	return h.endSessions(ctx, out, err)
}

// Abandon ends a user command that exhausted its deliveries.
func (h *UserChange) Abandon(ctx context.Context, in Input, cause error) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	var cmd domain.UserCommand
	out, err := h.abandon(ctx, command{"user", in, &cmd, func() string { return cmd.ChangeID }}, cause,
		func(id string, err error) (Output, error) { return h.reject(ctx, id, cmd, err) })
	return h.endSessions(ctx, out, err)
}

func (h *UserChange) apply(ctx context.Context, id string, cmd domain.UserCommand) (Output, error) {
	now := h.Now().UTC().Truncate(time.Second)
	if cmd.Op == domain.OpDelete {
		cur, ok := h.View.User(cmd.UserID)
		if !ok {
			return Output{}, domain.ErrUserNotFound.With("no user %q", cmd.UserID)
		}
		if err := domain.CheckVersion(cmd.ExpectedVersion, cur.Version); err != nil {
			return Output{}, err
		}
		cur.Version, cur.UpdatedAt = cur.Version+1, now
		return h.finish(ctx, "user", id, adminEvent{200, domain.EventUserDeleted, cur.UserID, UserEventData{ChangeID: id, User: &cur, StatusCode: 200}})
	}
	spec := *cmd.User
	if spec.UserID == "" {
		spec.UserID = domain.UserIDPrefix + domain.DerivedUUID("user", id)
	}
	version, created, live := h.View.UserVersion(spec.UserID)
	stored := int64(0)
	var before []string
	if live {
		stored = version
		cur, _ := h.View.User(spec.UserID)
		before = cur.NormalizedEmails()
	} else {
		created = now
	}
	if err := domain.CheckVersion(cmd.ExpectedVersion, stored); err != nil {
		return Output{}, err
	}
	u, err := domain.NewUser(spec, version+1, created, now)
	if err != nil {
		return Output{}, err
	}
	after := u.NormalizedEmails()
	if err := h.claimAll(ctx, u.UserID, after, before); err != nil {
		return Output{}, err
	}
	typ := domain.EventUserCreated
	if live {
		typ = domain.EventUserUpdated
	}
	return h.finish(ctx, "user", id, adminEvent{200, typ, u.UserID, UserEventData{ChangeID: id, User: &u, StatusCode: 200}})
}

// claimAll claims each address for userID. An address held by another live
// user who still lists it is a duplicate_email (the claims made here are
// released); a claim left by a user who no longer lists the address (a
// change that crashed half way) is taken over.
func (h *UserChange) claimAll(ctx context.Context, userID string, emails, held []string) error {
	// undo releases every claim of userID its live state does not list:
	// those made here and those left by an earlier attempt of this command.
	undo := func() { _ = h.Store.ReleaseOthers(ctx, userID, held) }
	for _, e := range emails {
		if slices.Contains(held, e) {
			continue
		}
		owner, _, err := h.Store.ClaimEmail(ctx, e, userID)
		if err == nil && owner != userID {
			if other, ok := h.View.User(owner); ok && slices.Contains(other.NormalizedEmails(), e) {
				undo()
				return domain.ErrDuplicateEmail.With("an email of this user belongs to user %s", owner)
			}
			if err = h.Store.ReleaseEmail(ctx, e, owner); err == nil {
				owner, _, err = h.Store.ClaimEmail(ctx, e, userID)
			}
		}
		if err != nil {
			undo()
			return fmt.Errorf("claim email: %w", err)
		}
		if owner != userID {
			undo()
			return domain.ErrDuplicateEmail.With("an email of this user belongs to user %s", owner)
		}
	}
	return nil
}

func (h *UserChange) reject(ctx context.Context, id string, cmd domain.UserCommand, cause error) (Output, error) {
	uid := cmd.UserID
	if cmd.User != nil && uid == "" {
		uid = cmd.User.UserID
	}
	return h.rejectWith(ctx, "user", id, cause, refusal{domain.EventUserRejected, uid, func(e *domain.Error, uid string) any {
		return UserEventData{ChangeID: id, UserID: uid, StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message}
	}})
}
