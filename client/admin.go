package client

import (
	"context"
	"encoding/json"
)

// ExpectVersion returns a pointer to v, for the ExpectedVersion of a
// command: the change applies only when the stored version is v (0: the
// object must not exist yet); otherwise ErrVersionConflict.
func ExpectVersion(v int64) *int64 { return &v }

// ProfileCommand creates or replaces a profile (op upsert, contract
// section 4).
type ProfileCommand struct {
	ChangeID        string // the command's id; empty: a random one (NewID)
	ExpectedVersion *int64 // optional; see ExpectVersion
	Profile         ProfileSpec
}

// DeleteProfileCommand deletes a profile (op delete).
type DeleteProfileCommand struct {
	ChangeID        string // the command's id; empty: a random one (NewID)
	ExpectedVersion *int64 // optional; see ExpectVersion
	ProfileID       string
}

// ProfileResult is the outcome of a profile command: the profile as stored
// (for a delete, as it was, with the new version). It is also the data of
// the profile.created, .updated and .deleted events.
type ProfileResult struct {
	ChangeID   string  `json:"change_id"`
	StatusCode int     `json:"status_code"`
	Profile    Profile `json:"profile"`
}

// UserCommand creates or replaces a user (op upsert, contract section 5).
type UserCommand struct {
	ChangeID        string // the command's id; empty: a random one (NewID)
	ExpectedVersion *int64 // optional; see ExpectVersion
	User            UserSpec
}

// DeleteUserCommand deletes a user (op delete).
type DeleteUserCommand struct {
	ChangeID        string // the command's id; empty: a random one (NewID)
	ExpectedVersion *int64 // optional; see ExpectVersion
	UserID          string
}

// UserResult is the outcome of a user command: the user as stored. It is
// also the data of the user.created, .updated and .deleted events.
type UserResult struct {
	ChangeID   string `json:"change_id"`
	StatusCode int    `json:"status_code"`
	User       User   `json:"user"`
}

type adminWire struct {
	ChangeID        string       `json:"change_id"`
	Op              string       `json:"op"`
	ExpectedVersion *int64       `json:"expected_version,omitempty"`
	Profile         *ProfileSpec `json:"profile,omitempty"`
	ProfileID       string       `json:"profile_id,omitempty"`
	User            *UserSpec    `json:"user,omitempty"`
	UserID          string       `json:"user_id,omitempty"`
}

// ApplyProfile creates or replaces a profile through
// <prefix>.profiles.commands and waits for the outcome. Commands are
// applied one at a time for the whole fleet; a change_id seen before gets
// its first outcome, whatever the payload. Errors are as for Attest.
func (c *Client) ApplyProfile(ctx context.Context, cmd ProfileCommand) (*ProfileResult, error) {
	p := cmd.Profile
	return admin[ProfileResult](ctx, c, "profiles", adminWire{ChangeID: cmd.ChangeID, Op: "upsert", ExpectedVersion: cmd.ExpectedVersion, Profile: &p})
}

// DeleteProfile deletes a profile through <prefix>.profiles.commands.
func (c *Client) DeleteProfile(ctx context.Context, cmd DeleteProfileCommand) (*ProfileResult, error) {
	return admin[ProfileResult](ctx, c, "profiles", adminWire{ChangeID: cmd.ChangeID, Op: "delete", ExpectedVersion: cmd.ExpectedVersion, ProfileID: cmd.ProfileID})
}

// ApplyUser creates or replaces a user through <prefix>.users.commands.
func (c *Client) ApplyUser(ctx context.Context, cmd UserCommand) (*UserResult, error) {
	u := cmd.User
	return admin[UserResult](ctx, c, "users", adminWire{ChangeID: cmd.ChangeID, Op: "upsert", ExpectedVersion: cmd.ExpectedVersion, User: &u})
}

// DeleteUser deletes a user through <prefix>.users.commands.
func (c *Client) DeleteUser(ctx context.Context, cmd DeleteUserCommand) (*UserResult, error) {
	return admin[UserResult](ctx, c, "users", adminWire{ChangeID: cmd.ChangeID, Op: "delete", ExpectedVersion: cmd.ExpectedVersion, UserID: cmd.UserID})
}

// admin publishes a profile or user command and decodes its outcome.
func admin[T any](ctx context.Context, c *Client, kind string, w adminWire) (*T, error) {
	if w.ChangeID == "" {
		w.ChangeID = NewID()
	}
	if err := checkID("change_id", w.ChangeID); err != nil {
		return nil, err
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	op := kind + "." + w.Op
	subject := c.subject(kind, "commands")
	data, err := c.command(ctx, op, subject, "change_id", w.ChangeID, body)
	if err != nil {
		return nil, err
	}
	var r T
	if err := decode(op, subject, data, "change_id", &r); err != nil {
		return nil, err
	}
	return &r, nil
}
