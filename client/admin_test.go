package client_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tat-worker/attest/client"
)

// TestProfileCommands: create, update with expected_version, delete, the
// same change_id again, and each refusal of profile commands by errors.Is.
func TestProfileCommands(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	id := "profile-cmd-" + uuid.NewString()[:8]
	spec := testProfile(id)

	created, err := c.ApplyProfile(ctx, client.ProfileCommand{ChangeID: "create-" + id, ExpectedVersion: client.ExpectVersion(0), Profile: spec})
	if err != nil {
		t.Fatal(err)
	}
	if created.StatusCode != 200 || created.ChangeID != "create-"+id || created.Profile.ProfileID != id || created.Profile.Version != 1 ||
		created.Profile.Issuer != idp.Iss || len(created.Profile.PublicKeys) != 1 || created.Profile.CreatedAt.IsZero() {
		t.Fatalf("created = %+v", created)
	}
	again, err := c.ApplyProfile(ctx, client.ProfileCommand{ChangeID: "create-" + id, Profile: spec})
	if err != nil || again.Profile.Version != 1 {
		t.Fatalf("the same change_id again: %+v, %v; want the first outcome", again, err)
	}
	spec.Name = "Renamed"
	updated, err := c.ApplyProfile(ctx, client.ProfileCommand{ExpectedVersion: client.ExpectVersion(1), Profile: spec})
	if err != nil || updated.Profile.Version != 2 || updated.Profile.Name != "Renamed" {
		t.Fatalf("updated = %+v, %v", updated, err)
	}
	evs := eventsOf(t, c, updated.ChangeID)
	if len(evs) != 1 || evs[0].Type != client.EventProfileUpdated || evs[0].ProfileID() != id {
		t.Fatalf("events of the update: %d", len(evs))
	}

	many := testProfile("profile-many-" + uuid.NewString()[:8])
	for range 5 {
		many.PublicKeys = append(many.PublicKeys, many.PublicKeys[0])
	}
	noIssuer := testProfile("profile-noiss")
	noIssuer.Issuer = ""
	for _, tc := range []struct {
		name string
		cmd  client.ProfileCommand
		want *client.Error
	}{
		{"stale version", client.ProfileCommand{ExpectedVersion: client.ExpectVersion(1), Profile: spec}, client.ErrVersionConflict},
		{"no issuer", client.ProfileCommand{Profile: noIssuer}, client.ErrTrustedTokenProfileInvalidRequest},
		{"six keys", client.ProfileCommand{Profile: many}, client.ErrTooManyPEMFilesForTrustedTokenProfile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cmd.ChangeID = "refused-" + uuid.NewString()
			_, err := c.ApplyProfile(ctx, tc.cmd)
			if e := refusal(t, err, tc.want); e.ID != tc.cmd.ChangeID {
				t.Errorf("error id = %q", e.ID)
			}
			if evs := eventsOf(t, c, tc.cmd.ChangeID); len(evs) != 1 || evs[0].Type != client.EventProfileRejected {
				t.Errorf("events = %d, want one profile.rejected", len(evs))
			}
		})
	}

	deleted, err := c.DeleteProfile(ctx, client.DeleteProfileCommand{ProfileID: id, ExpectedVersion: client.ExpectVersion(2)})
	if err != nil || deleted.Profile.Version != 3 {
		t.Fatalf("deleted = %+v, %v", deleted, err)
	}
	_, err = c.DeleteProfile(ctx, client.DeleteProfileCommand{ProfileID: id})
	refusal(t, err, client.ErrTrustedTokenProfileNotFound)
	_, err = c.Attest(ctx, client.AttestRequest{ProfileID: id, Token: token("a@example.com", nil)})
	refusal(t, err, client.ErrTrustedTokenProfileNotFound)
	_, err = c.DeleteProfile(ctx, client.DeleteProfileCommand{ChangeID: "no spaces", ProfileID: id})
	refusal(t, err, client.ErrInvalidRequest)
}

// TestUserCommands: create, update, delete users, and each refusal.
func TestUserCommands(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	tag := uuid.NewString()[:8]
	spec := client.UserSpec{
		UserID: "user-cmd-" + tag, Emails: []client.UserEmail{{Email: "Grace-" + tag + "@Example.com", Verified: true}},
		Name: client.UserName{FirstName: "Grace", MiddleName: "B", LastName: "Hopper"}, ExternalID: "ext-1",
		TrustedMetadata: json.RawMessage(`{"department": "navy"}`),
	}
	created, err := c.ApplyUser(ctx, client.UserCommand{User: spec})
	if err != nil {
		t.Fatal(err)
	}
	u := created.User
	if created.StatusCode != 200 || u.UserID != spec.UserID || u.Version != 1 || u.Status != client.UserActive ||
		u.Name.MiddleName != "B" || string(u.TrustedMetadata) != `{"department":"navy"}` || u.ExternalID != "ext-1" {
		t.Fatalf("created = %+v (metadata %s)", created, u.TrustedMetadata)
	}
	spec.Status = client.UserPending
	updated, err := c.ApplyUser(ctx, client.UserCommand{ExpectedVersion: client.ExpectVersion(1), User: spec})
	if err != nil || updated.User.Version != 2 || updated.User.Status != client.UserPending {
		t.Fatalf("updated = %+v, %v", updated, err)
	}
	for _, tc := range []struct {
		name string
		cmd  client.UserCommand
		want *client.Error
	}{
		{"stale version", client.UserCommand{ExpectedVersion: client.ExpectVersion(1), User: spec}, client.ErrVersionConflict},
		{"email of another user", client.UserCommand{User: client.UserSpec{UserID: "user-other-" + tag, Emails: []client.UserEmail{{Email: strings.ToLower(spec.Emails[0].Email)}}}}, client.ErrDuplicateEmail},
		{"bad email", client.UserCommand{User: client.UserSpec{Emails: []client.UserEmail{{Email: "not an email"}}}}, client.ErrInvalidUser},
		{"bad status", client.UserCommand{User: client.UserSpec{Status: "gone"}}, client.ErrInvalidUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ApplyUser(ctx, tc.cmd)
			refusal(t, err, tc.want)
		})
	}
	deleted, err := c.DeleteUser(ctx, client.DeleteUserCommand{UserID: spec.UserID})
	if err != nil || deleted.User.Version != 3 {
		t.Fatalf("deleted = %+v, %v", deleted, err)
	}
	_, err = c.DeleteUser(ctx, client.DeleteUserCommand{UserID: spec.UserID})
	refusal(t, err, client.ErrUserNotFound)
}
