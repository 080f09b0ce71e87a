package client

import (
	"context"
	"time"
)

// The workers' own session-signing keys (the keys that sign session JWTs,
// published by SessionJWKS): rotated by a keys command on
// <prefix>.keys.commands, listed by <prefix>.reads.keys.list. Never
// private material.

// Session-signing key states, at the time of a read.
const (
	KeyNext      = "next"      // published, not signing yet
	KeySigning   = "signing"   // signs new session JWTs
	KeyVerifying = "verifying" // no longer signs; its JWTs still verify
	KeyRetired   = "retired"   // neither
)

// SigningKey is one session-signing key: its kid (the JWT header's), its
// number in rotation order and its times; State is set by
// ListSigningKeys only.
type SigningKey struct {
	KID       string    `json:"kid"`
	Number    int       `json:"number"`
	State     string    `json:"state,omitempty"`
	PublishAt time.Time `json:"publish_at,omitzero"`
	SignFrom  time.Time `json:"sign_from,omitzero"`
	SignUntil time.Time `json:"sign_until,omitzero"`
	RetireAt  time.Time `json:"retire_at,omitzero"`
}

// RotateKeyCommand rotates the fleet's session-signing key (op rotate).
type RotateKeyCommand struct {
	ChangeID string // the command's id; empty: a random one (NewID)
}

// KeyRotationResult is the outcome of a rotation: the new key (published
// now, signing from SignFrom) and the key it replaces (signing until
// then, retired at RetireAt). It is also the data of tat.keys.rotated.
type KeyRotationResult struct {
	ChangeID    string      `json:"change_id"`
	StatusCode  int         `json:"status_code"`
	Key         *SigningKey `json:"key,omitempty"`
	PreviousKey *SigningKey `json:"previous_key,omitempty"`
}

// RotateSigningKey publishes a keys command on <prefix>.keys.commands and
// waits for its outcome. Keys commands are applied one at a time for the
// fleet, like profile and user commands; a change_id seen before gets its
// first outcome and rotates nothing. A rotation while the newest key is
// still in its publish window is ErrKeyRotationInProgress.
func (c *Client) RotateSigningKey(ctx context.Context, cmd RotateKeyCommand) (*KeyRotationResult, error) {
	return admin[KeyRotationResult](ctx, c, "keys", adminWire{ChangeID: cmd.ChangeID, Op: "rotate"})
}

// ListSigningKeys returns the session-signing keys the answering worker
// knows (<prefix>.reads.keys.list), in rotation order, each with its state
// at the time of the read.
func (c *Client) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	r, err := call[readReply](ctx, c, "reads.keys.list", struct{}{})
	if err != nil {
		return nil, err
	}
	if r.Keys == nil {
		return []SigningKey{}, nil
	}
	return r.Keys, nil
}
