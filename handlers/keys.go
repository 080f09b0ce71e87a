package handlers

import (
	"context"
	"time"

	"github.com/tat-worker/attest/domain"
)

// KeyLister lists the fleet's session-signing keys as a worker knows them.
type KeyLister interface {
	// KeyInfos returns every key known, in rotation order, with its state
	// at now. Never private material.
	KeyInfos(now time.Time) []domain.KeyInfo
}

// SessionKeys is the fleet's session-signing keys: records inserted under
// unique names, one per rotation (see domain.PlanRotation).
type SessionKeys interface {
	KeyLister
	// Rotate records the key that follows the newest, made by the rotate
	// command changeID at now, and returns it and the key it replaces.
	// When a key made by changeID is stored already (an earlier delivery),
	// it returns that one. A rotation refused (the newest key is still in
	// its publish window, or another worker recorded the next key a moment
	// ago) is domain.ErrKeyRotationInProgress; other errors are transient.
	Rotate(ctx context.Context, changeID string, now time.Time) (key, previous domain.KeyInfo, err error)
	// Rotated returns the key the rotate command changeID made, if any.
	Rotated(ctx context.Context, changeID string) (key, previous domain.KeyInfo, ok bool, err error)
}

// Rotation triggers, in the rotated event.
const (
	TriggerCommand  = "command"
	TriggerSchedule = "schedule"
)

// KeysEventData is the data of tat.keys.rotated and tat.keys.rejected, and
// the reply of a keys command. It names keys by kid, number and times,
// never private material.
type KeysEventData struct {
	ChangeID string `json:"change_id,omitempty"`
	// Trigger is what rotated: a command or the schedule.
	Trigger string `json:"trigger,omitempty"`
	// Key is the new key: kid, number, publish_at, sign_from.
	Key *domain.KeyInfo `json:"key,omitempty"`
	// PreviousKey is the key it replaces: kid, number, sign_until (the new
	// key's sign_from), retire_at.
	PreviousKey  *domain.KeyInfo `json:"previous_key,omitempty"`
	StatusCode   int             `json:"status_code,omitempty"`
	ErrorType    string          `json:"error_type,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	// Position places the command in TAT_ADMIN (events of commands only,
	// not replies, not scheduled rotations).
	Position
}

// KeyRotation applies <prefix>.keys.commands ({"change_id", "op":
// "rotate"}) like profile and user commands: one at a time for the fleet,
// one outcome per change_id (a repeat is answered from it and rotates
// nothing), one event (tat.keys.rotated or tat.keys.rejected).
type KeyRotation struct {
	admin
	Keys SessionKeys
}

// NewKeyRotation wires a KeyRotation.
func NewKeyRotation(v *View, b Barrier, done *Completer, now func() time.Time, keys SessionKeys) *KeyRotation {
	return &KeyRotation{admin: admin{View: v, Barrier: b, Done: done, Now: now}, Keys: keys}
}

// Handle applies one keys command to its one outcome; an error is
// transient.
func (h *KeyRotation) Handle(ctx context.Context, in Input) (Output, error) {
	ctx = withPosition(ctx, in)
	var cmd domain.KeysCommand
	return h.handle(ctx, command{"keys", in, &cmd, func() string { return cmd.ChangeID }}, func() error { return cmd.Validate() },
		func(id string) (Output, error) { return h.apply(ctx, id) },
		func(id string, err error) (Output, error) { return h.reject(ctx, id, err) })
}

// Abandon ends a keys command that exhausted its deliveries: rotated, when
// an earlier delivery stored its key (so no key is ever published that no
// event announces), else rejected with internal_server_error.
func (h *KeyRotation) Abandon(ctx context.Context, in Input, cause error) (Output, error) {
	ctx = withPosition(ctx, in)
	var cmd domain.KeysCommand
	return h.abandon(ctx, command{"keys", in, &cmd, func() string { return cmd.ChangeID }}, cause,
		func(id string, err error) (Output, error) {
			key, prev, ok, ferr := h.Keys.Rotated(ctx, id)
			switch {
			case ferr != nil:
				return Output{}, ferr
			case ok:
				return h.rotated(ctx, id, key, prev)
			}
			return h.reject(ctx, id, err)
		})
}

func (h *KeyRotation) apply(ctx context.Context, id string) (Output, error) {
	key, prev, err := h.Keys.Rotate(ctx, id, h.Now())
	if err != nil {
		return Output{}, err
	}
	return h.rotated(ctx, id, key, prev)
}

func (h *KeyRotation) rotated(ctx context.Context, id string, key, prev domain.KeyInfo) (Output, error) {
	key.State, prev.State = "", ""
	return h.finish(ctx, "keys", id, adminEvent{200, domain.EventKeysRotated, key.KID,
		KeysEventData{ChangeID: id, Trigger: TriggerCommand, Key: &key, PreviousKey: &prev, StatusCode: 200}})
}

func (h *KeyRotation) reject(ctx context.Context, id string, cause error) (Output, error) {
	return h.rejectWith(ctx, "keys", id, cause, refusal{domain.EventKeysRejected, "", func(e *domain.Error, _ string) any {
		return KeysEventData{ChangeID: id, StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message}
	}})
}

// KeysListRequest is the request of reads.keys.list: {} (no member).
type KeysListRequest struct{}

// KeysList answers reads.keys.list: the session-signing keys this worker
// knows, in rotation order, each with its kid, number, state at the time
// of the read (next, signing, verifying, retired) and times. Never private
// material.
func (h *Reads) KeysList(_ context.Context, data []byte) ReadReply {
	var req KeysListRequest
	if err := domain.DecodeStrict(data, &req); err != nil {
		return readError(err)
	}
	keys := []domain.KeyInfo{}
	if h.SessionKeys != nil {
		keys = append(keys, h.SessionKeys.KeyInfos(h.Now())...)
	}
	return ReadReply{StatusCode: 200, Keys: &keys}
}
