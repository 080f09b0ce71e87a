package handlers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Tests of UserChange through its exported API (found missing by mutation
// testing, make mutate): versions, what reaches the store, email claims
// taken, released and taken over, duplicate addresses and refusals.

// userCmd runs one user command on h and decodes its reply.
func userCmd(t *testing.T, h *handlers.UserChange, cmd map[string]any) handlers.UserEventData {
	t.Helper()
	data, _ := json.Marshal(cmd)
	out, err := h.Handle(context.Background(), handlers.Input{Data: data, StreamSeq: 77})
	if err != nil {
		t.Fatalf("user command %v: %v", cmd, err)
	}
	var r handlers.UserEventData
	if err := json.Unmarshal(out.Reply, &r); err != nil {
		t.Fatalf("reply %s: %v", out.Reply, err)
	}
	return r
}

func userSpec(id, status string, emails ...string) map[string]any {
	var list []any
	for _, e := range emails {
		list = append(list, map[string]any{"email": e, "verified": true})
	}
	return map[string]any{"user_id": id, "status": status, "emails": list}
}

// owners returns the owner of each address's claim ("" for none).
func (f *fakeUsers) owners(emails ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(emails))
	for i, e := range emails {
		out[i] = f.emails[e]
	}
	return out
}

// TestUserChangeLifecycle: create, update and delete each bump the version
// by one and write the user to the store (deleted only by the delete); an
// update claims its new addresses and releases those it dropped; the delete
// releases every claim; each publishes its event and reaches the view.
func TestUserChangeLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	h := userChange(e, nil)
	const id = "user-lin"

	steps := []struct {
		cmd     map[string]any
		version int64
		event   string
		deleted bool
		claims  map[string]string // address -> owner wanted after the step
	}{
		{map[string]any{"change_id": "u-1", "op": "upsert", "user": userSpec(id, domain.UserActive, "lin@example.com", "lin@work.example")},
			1, domain.EventUserCreated, false, map[string]string{"lin@example.com": id, "lin@work.example": id}},
		{map[string]any{"change_id": "u-2", "op": "upsert", "expected_version": 1, "user": userSpec(id, domain.UserActive, "lin@example.com", "lin@new.example")},
			2, domain.EventUserUpdated, false, map[string]string{"lin@example.com": id, "lin@work.example": "", "lin@new.example": id}},
		{map[string]any{"change_id": "u-3", "op": "delete", "expected_version": 2, "user_id": id},
			3, domain.EventUserDeleted, true, map[string]string{"lin@example.com": "", "lin@new.example": ""}},
	}
	for i, s := range steps {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		r := userCmd(t, h, s.cmd)
		if r.StatusCode != 200 || r.ErrorType != "" || r.User == nil {
			t.Fatalf("step %d: reply %+v", i+1, r)
		}
		if r.User.Version != s.version || !r.User.CreatedAt.Equal(t0) || !r.User.UpdatedAt.Equal(t0.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("step %d: reply names version %d created %v updated %v", i+1, r.User.Version, r.User.CreatedAt, r.User.UpdatedAt)
		}
		e.users.mu.Lock()
		su, ok := e.users.users[id]
		e.users.mu.Unlock()
		if !ok || su.u.Version != s.version || su.deleted != s.deleted {
			t.Errorf("step %d: the store holds v%d deleted=%v (%v), want v%d deleted=%v", i+1, su.u.Version, su.deleted, ok, s.version, s.deleted)
		}
		for addr, want := range s.claims {
			if got := e.users.owners(addr)[0]; got != want {
				t.Errorf("step %d: %s is claimed by %q, want %q", i+1, addr, got, want)
			}
		}
		if evs := e.pub.OfType(s.event); len(evs) != 1 || evs[0].Subject != id {
			t.Errorf("step %d: %d %s events", i+1, len(evs), s.event)
		}
		if u, live := e.view.User(id); live == s.deleted || (live && u.Version != s.version) {
			t.Errorf("step %d: the view holds v%d (live %v)", i+1, u.Version, live)
		}
	}
}

// TestUserChangeEmailClaims: an address another live user lists is a
// duplicate_email and the change claims nothing; an address whose claim
// was left by a user who no longer lists it is taken over.
func TestUserChangeEmailClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	h := userChange(e, nil)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	// A claim left behind: user-old holds it but its live state lists
	// another address (a change that crashed half way).
	e.addUser(t, "user-old", "old@example.com", domain.UserActive)
	if _, ok, _ := e.users.ClaimEmail(context.Background(), "stale@example.com", "user-old"); !ok {
		t.Fatal("precondition: claim stale@example.com")
	}

	r := userCmd(t, h, map[string]any{"change_id": "d-1", "op": "upsert", "user": userSpec("user-bob", domain.UserActive, "bob@example.com", "ada@example.com")})
	if r.ErrorType != domain.ErrDuplicateEmail.Code || r.StatusCode != domain.ErrDuplicateEmail.Status || r.User != nil {
		t.Errorf("an address user-ada lists: reply %+v", r)
	}
	if got := e.users.owners("bob@example.com", "ada@example.com"); got[0] != "" || got[1] != "user-ada" {
		t.Errorf("after the refusal the claims are %v, want none for bob and ada's kept", got)
	}
	if _, ok := e.users.user("user-bob"); ok {
		t.Error("the refused user was stored")
	}
	if n := len(e.pub.OfType(domain.EventUserRejected)); n != 1 {
		t.Errorf("%d user.rejected events", n)
	}

	r = userCmd(t, h, map[string]any{"change_id": "d-2", "op": "upsert", "user": userSpec("user-bob", domain.UserActive, "bob@example.com", "stale@example.com")})
	if r.StatusCode != 200 || r.User == nil || r.User.Version != 1 {
		t.Fatalf("taking over a stale claim: reply %+v", r)
	}
	if got := e.users.owners("bob@example.com", "stale@example.com", "old@example.com"); got[0] != "user-bob" || got[1] != "user-bob" || got[2] != "user-old" {
		t.Errorf("claims %v, want bob, bob, old", got)
	}
}

// TestUserChangeRefusalsStoreNothing: a version conflict or an unknown
// user gets its error in the reply and a user.rejected, and changes
// nothing in the store.
func TestUserChangeRefusalsStoreNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	h := userChange(e, nil)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	for _, tc := range []struct {
		name string
		cmd  map[string]any
		want *domain.Error
	}{
		{"update at a stale version", map[string]any{"change_id": "r-1", "op": "upsert", "expected_version": 4, "user": userSpec("user-ada", domain.UserActive, "ada@new.example")}, domain.ErrVersionConflict},
		{"delete at a stale version", map[string]any{"change_id": "r-2", "op": "delete", "expected_version": 4, "user_id": "user-ada"}, domain.ErrVersionConflict},
		{"delete of an unknown user", map[string]any{"change_id": "r-3", "op": "delete", "user_id": "user-none"}, domain.ErrUserNotFound},
	} {
		r := userCmd(t, h, tc.cmd)
		if r.ErrorType != tc.want.Code || r.StatusCode != tc.want.Status || r.User != nil {
			t.Errorf("%s: reply %+v, want %s", tc.name, r, tc.want.Code)
		}
	}
	if u, ok := e.users.user("user-ada"); !ok || u.Version != 1 {
		t.Errorf("the store holds %+v (%v)", u, ok)
	}
	if got := e.users.owners("ada@example.com", "ada@new.example"); got[0] != "user-ada" || got[1] != "" {
		t.Errorf("claims %v", got)
	}
	// Each user.rejected names the user the command was about, from the
	// spec of an upsert or the user_id of a delete.
	rejected := e.pub.OfType(domain.EventUserRejected)
	if len(rejected) != 3 {
		t.Fatalf("%d user.rejected events", len(rejected))
	}
	for i, want := range []string{"user-ada", "user-ada", "user-none"} {
		var d handlers.UserEventData
		_ = json.Unmarshal(rejected[i].Data, &d)
		if rejected[i].Subject != want || d.UserID != want {
			t.Errorf("user.rejected %d names %q (subject %q), want %q", i, d.UserID, rejected[i].Subject, want)
		}
	}
}
