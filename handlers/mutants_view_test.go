package handlers_test

import (
	"testing"

	"github.com/tat-worker/attest/handlers"
)

// TestViewKeepsTheStateItHoldsAtAnEqualVersion: a profile state at the
// version the view already holds (a redelivered or repeated event) changes
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
}
