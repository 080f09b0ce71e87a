package handlers_test

import (
	"testing"

	"github.com/tat-worker/attest/domain"

	"github.com/tat-worker/attest/handlers"
)

// TestViewKeepsTheStateItHoldsAtAnEqualVersion: a profile or user state at
// the version the view already holds (a redelivered or repeated event) changes
// nothing; only a newer version replaces it. (Found missing by mutation
// testing, make mutate.)
func TestViewKeepsTheStateItHoldsAtAnEqualVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	v := handlers.NewView(func(id string) string { return id })
	p := e.profile
	p.Version, p.Name = 2, "first"
	v.PutProfile(p, false)
	same := p
	same.Name = "same version"
	v.PutProfile(same, true)
	if got, ok := v.Profile(p.ProfileID); !ok || got.Name != "first" {
		t.Errorf("after a state at the same version: %q (live %v), want first", got.Name, ok)
	}
	newer := p
	newer.Version, newer.Name = 3, "newer"
	v.PutProfile(newer, false)
	if got, ok := v.Profile(p.ProfileID); !ok || got.Name != "newer" {
		t.Errorf("after a newer version: %q (live %v), want newer", got.Name, ok)
	}

	// The same for a user.
	u := e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	sameUser := u
	sameUser.Status = domain.UserDisabled
	e.view.PutUser(sameUser, false)
	if got, ok := e.view.User("user-ada"); !ok || got.Status != domain.UserActive {
		t.Errorf("after a user state at the same version: %+v (live %v)", got, ok)
	}
	newerUser := sameUser
	newerUser.Version++
	e.view.PutUser(newerUser, false)
	if got, ok := e.view.User("user-ada"); !ok || got.Status != domain.UserDisabled {
		t.Errorf("after a newer user version: %+v (live %v)", got, ok)
	}
}
