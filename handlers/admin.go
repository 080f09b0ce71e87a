package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tat-worker/attest/domain"
)

// admin is what profile and user changes share: they run one at a time
// (the admin consumer allows one message in flight for the whole fleet),
// may read the store, and catch the view up before deciding.
type admin struct {
	View    *View
	Barrier Barrier
	Done    *Completer
	Now     func() time.Time
	// applyState writes the state an outcome's event names to the store.
	applyState func(ctx context.Context, e domain.Event) error
}

// command is one admin command being handled: its kind (the first part of
// its outcome key: profile, user, keys), its delivery, the value it decodes
// into, and how to read its change_id from that value.
type command struct {
	kind     string
	in       Input
	cmd      any
	changeID func() string
}

// begin decodes a command and finds an earlier outcome of it. It returns
// the command id, a decoding error (a refusal) and, when the command was
// seen before, its stored outcome.
func (h *admin) begin(ctx context.Context, c command) (string, error, *Outcome, error) {
	derr := domain.DecodeStrict(c.in.Data, c.cmd)
	pid := c.changeID()
	id := commandID(pid, c.in)
	if derr == nil && pid != "" && pid != id {
		derr = domain.ErrInvalidRequest.With("change_id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	o, ok, err := h.Done.Outcomes.Get(ctx, c.kind+":"+id)
	if err != nil {
		return id, derr, nil, fmt.Errorf("look up outcome: %w", err)
	}
	if ok {
		return id, derr, &o, nil
	}
	if err := h.Barrier.CatchUp(ctx); err != nil {
		return id, derr, nil, err
	}
	return id, derr, nil, nil
}

// adminEvent is the outcome an admin command comes to: its status code,
// and its event's type, subject and data (the reply is the data without
// the command's position).
type adminEvent struct {
	status  int
	typ     string
	subject string
	data    any
}

// finish records the outcome of a command whose reply is data with a
// status code, applies the state it names and publishes its event. The
// outcome is written first (an outbox): a crash after it is finished by the
// redelivery, which applies the same state again (the same version, an
// idempotent replace) before publishing.
func (h *admin) finish(ctx context.Context, kind, id string, out adminEvent) (Output, error) {
	now := h.Now()
	data := out.data
	// The reply is the event's data without the command's position: the
	// position is for the audit log.
	reply, err := json.Marshal(data)
	if err != nil {
		return Output{}, err
	}
	errType := ""
	switch d := data.(type) {
	case ProfileEventData:
		d.Position, d.ReplyRefused = positionOf(ctx), replyRefused(ctx)
		data, errType = d, d.ErrorType
	case UserEventData:
		d.Position, d.ReplyRefused = positionOf(ctx), replyRefused(ctx)
		data, errType = d, d.ErrorType
	case KeysEventData:
		d.Position = positionOf(ctx)
		data, errType = d, d.ErrorType
	}
	ev, err := domain.NewEvent(domain.EventID(kind, id), out.typ, out.subject, now, data)
	if err != nil {
		return Output{}, err
	}
	o := Outcome{Key: kind + ":" + id, StatusCode: out.status, ErrorType: errType, Reply: reply, Event: ev, CreatedAt: now}
	stored, _, err := h.Done.Outcomes.Record(ctx, o)
	if err != nil {
		return Output{}, fmt.Errorf("record outcome %s: %w", o.Key, err)
	}
	return h.resume(ctx, stored)
}

// resume finishes a stored outcome: the state it names is applied (unless
// its event is out, which means it was) and its event published.
func (h *admin) resume(ctx context.Context, o Outcome) (Output, error) {
	if !o.Published && h.applyState != nil {
		if err := h.applyState(ctx, o.Event); err != nil {
			return Output{}, fmt.Errorf("apply %s: %w", o.Key, err)
		}
	}
	o, err := h.Done.Resume(ctx, o)
	if err != nil {
		return Output{}, err
	}
	// A command answered from an outcome another message made (a repeated
	// change_id) is announced by a <kind>.repeated event.
	if err := h.Done.Repeated(ctx, o, h.Now(), o.StatusCode, "", false); err != nil {
		return Output{}, err
	}
	return Output{Reply: o.Reply, Outcome: o}, nil
}

// handle runs one admin command: decode, answer a repeat with its first
// outcome, catch up, validate, apply; refusals become a rejected outcome,
// other errors are transient. validate and apply see the decoded command.
func (h *admin) handle(ctx context.Context, c command, validate func() error,
	apply func(id string) (Output, error), reject func(id string, err error) (Output, error)) (Output, error) {
	id, derr, seen, err := h.begin(ctx, c)
	switch {
	case err != nil:
		return Output{}, err
	case seen != nil:
		return h.resume(ctx, *seen)
	case derr == nil:
		derr = validate()
	}
	if derr != nil {
		return reject(id, derr)
	}
	out, err := apply(id)
	if err != nil && Permanent(err) {
		return reject(id, err)
	}
	return out, err
}

// abandon ends an admin command that exhausted its deliveries: rejected
// with internal_server_error, unless it already has an outcome. It never
// applies the command.
func (h *admin) abandon(ctx context.Context, c command, cause error, reject func(id string, err error) (Output, error)) (Output, error) {
	_ = domain.DecodeStrict(c.in.Data, c.cmd)
	id := commandID(c.changeID(), c.in)
	o, ok, err := h.Done.Outcomes.Get(ctx, c.kind+":"+id)
	if err != nil {
		return Output{}, fmt.Errorf("look up outcome: %w", err)
	}
	if ok {
		return h.resume(ctx, o)
	}
	return reject(id, domain.ErrInternal.Wrap(cause, "the command could not be completed"))
}

// refusal is how an admin command kind records a refusal: the rejected
// event's type, the id of the object the command named, and the event's
// data made from the error and that id (when valid; else "").
type refusal struct {
	typ      string
	objectID string
	data     func(e *domain.Error, objectID string) any
}

// rejectWith records a refused admin command: its subject is the object's
// id when valid, else omitted (never the change id).
func (h *admin) rejectWith(ctx context.Context, kind, id string, cause error, r refusal) (Output, error) {
	e := domain.AsError(cause)
	objectID := r.objectID
	if !domain.ValidCommandID(objectID) {
		objectID = ""
	}
	return h.finish(ctx, kind, id, adminEvent{status: e.Status, typ: r.typ, subject: objectID, data: r.data(e, objectID)})
}

// ProfileChange applies tat.profiles.commands.
type ProfileChange struct {
	admin
	Store ProfileStore
	Keys  KeySource
	Rules domain.ProfileRules
}

// NewProfileChange wires a ProfileChange.
func NewProfileChange(v *View, b Barrier, done *Completer, now func() time.Time, store ProfileStore, keys KeySource, rules domain.ProfileRules) *ProfileChange {
	h := &ProfileChange{admin: admin{View: v, Barrier: b, Done: done, Now: now}, Store: store, Keys: keys, Rules: rules}
	h.applyState = h.store
	return h
}

// store writes the profile a created, updated or deleted event names.
func (h *ProfileChange) store(ctx context.Context, e domain.Event) error {
	if e.Type == domain.EventProfileRejected {
		return nil
	}
	var d ProfileEventData
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Profile == nil {
		return fmt.Errorf("event %s names no profile", e.ID)
	}
	return h.Store.PutProfile(ctx, *d.Profile, e.Type == domain.EventProfileDeleted)
}

// Handle applies one profile command to its one outcome; an error is
// transient.
func (h *ProfileChange) Handle(ctx context.Context, in Input) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	var cmd domain.ProfileCommand
	return h.handle(ctx, command{"profile", in, &cmd, func() string { return cmd.ChangeID }}, func() error { return cmd.Validate() },
		func(id string) (Output, error) { return h.apply(ctx, id, cmd) },
		func(id string, err error) (Output, error) { return h.reject(ctx, id, cmd, err) })
}

// Abandon ends a profile command that exhausted its deliveries.
func (h *ProfileChange) Abandon(ctx context.Context, in Input, cause error) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	var cmd domain.ProfileCommand
	return h.abandon(ctx, command{"profile", in, &cmd, func() string { return cmd.ChangeID }}, cause,
		func(id string, err error) (Output, error) { return h.reject(ctx, id, cmd, err) })
}

func (h *ProfileChange) apply(ctx context.Context, id string, cmd domain.ProfileCommand) (Output, error) {
	now := h.Now().UTC().Truncate(time.Second)
	if cmd.Op == domain.OpDelete {
		cur, ok := h.View.Profile(cmd.ProfileID)
		if !ok {
			return Output{}, domain.ErrProfileNotFound.With("no trusted token profile %q", cmd.ProfileID)
		}
		if err := domain.CheckVersion(cmd.ExpectedVersion, cur.Version); err != nil {
			return Output{}, err
		}
		cur.Version, cur.UpdatedAt = cur.Version+1, now
		return h.finish(ctx, "profile", id, adminEvent{200, domain.EventProfileDeleted, cur.ProfileID, ProfileEventData{ChangeID: id, Profile: &cur, StatusCode: 200}})
	}
	spec := *cmd.Profile
	if spec.ProfileID == "" {
		spec.ProfileID = domain.ProfileIDPrefix + domain.DerivedUUID("profile", id)
	}
	version, created, live := h.View.ProfileVersion(spec.ProfileID)
	stored := int64(0)
	if live {
		stored = version
	} else {
		created = now
	}
	if err := domain.CheckVersion(cmd.ExpectedVersion, stored); err != nil {
		return Output{}, err
	}
	p, err := domain.NewProfile(spec, h.Rules, version+1, created, now)
	if err != nil {
		return Output{}, err
	}
	typ := domain.EventProfileCreated
	if live {
		typ = domain.EventProfileUpdated
	}
	out, err := h.finish(ctx, "profile", id, adminEvent{200, typ, p.ProfileID, ProfileEventData{ChangeID: id, Profile: &p, StatusCode: 200}})
	if err == nil && p.UsesJWKS() && h.Keys != nil {
		// Fetched once the profile is in the view, so the refresh event
		// names it. A failed first fetch does not refuse the profile: the
		// schedule and the first token retry, and the failure is an event.
		_ = h.Keys.Ensure(ctx, p.JWKSURL)
	}
	return out, err
}

func (h *ProfileChange) reject(ctx context.Context, id string, cmd domain.ProfileCommand, cause error) (Output, error) {
	pid := cmd.ProfileID
	if cmd.Profile != nil && pid == "" {
		pid = cmd.Profile.ProfileID
	}
	return h.rejectWith(ctx, "profile", id, cause, refusal{domain.EventProfileRejected, pid, func(e *domain.Error, pid string) any {
		return ProfileEventData{ChangeID: id, ProfileID: pid, StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message}
	}})
}
