package handlers_test

import (
	"testing"
	"time"

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

	// And for a session: the same revision again changes nothing.
	sess := domain.NewSession("session-v", "user-ada", domain.FactorEvidence{ProfileID: p.ProfileID, TokenID: "j"}, nil, t0, 60)
	e.view.PutSession(domain.SessionState{Session: sess, Revision: 1})
	e.view.PutSession(domain.SessionState{Session: sess, Revision: 1, Revoked: true})
	if got, ok := e.view.Session("session-v"); !ok || got.Revoked {
		t.Errorf("after a session state at the same revision: %+v (%v)", got, ok)
	}
}

// TestViewSweepAndSeq: Sweep forgets a session that ended before the cutoff
// and keeps one that ends at it; the applied sequence never goes back.
func TestViewSweepAndSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	sess := domain.NewSession("session-s", "user-ada", domain.FactorEvidence{ProfileID: e.profile.ProfileID, TokenID: "j"}, nil, t0, 60)
	e.view.PutSession(domain.SessionState{Session: sess, Revision: 1})
	if n := e.view.Sweep(sess.ExpiresAt); n != 0 {
		t.Errorf("Sweep at the expiry forgot %d sessions", n)
	}
	if _, ok := e.view.Session("session-s"); !ok {
		t.Fatal("a session ending at the cutoff was forgotten")
	}
	if n := e.view.Sweep(sess.ExpiresAt.Add(time.Second)); n != 1 {
		t.Errorf("Sweep after the expiry forgot %d sessions, want 1", n)
	}

	ev, _ := domain.NewEvent("evt-x", "tat.other", "x", t0, map[string]any{})
	_ = e.view.ApplyEvent(5, ev)
	_ = e.view.ApplyEvent(3, ev)
	if got := e.view.Seq(); got != 5 {
		t.Errorf("Seq = %d after applying 5 then 3, want 5", got)
	}
	_ = e.view.ApplyEvent(6, ev)
	if got := e.view.Seq(); got != 6 {
		t.Errorf("Seq = %d after applying 6, want 6", got)
	}
}

// TestViewEdges: a user's other sessions stay listed when one is swept; a
// page that holds exactly the last profiles says no more follow; a user
// event that names no user is an error, not a panic.
func TestViewEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	short := domain.NewSession("session-short", "user-ada", domain.FactorEvidence{ProfileID: e.profile.ProfileID, TokenID: "j1"}, nil, t0, 5)
	long := domain.NewSession("session-long", "user-ada", domain.FactorEvidence{ProfileID: e.profile.ProfileID, TokenID: "j2"}, nil, t0, 60)
	e.view.PutSession(domain.SessionState{Session: short, Revision: 1})
	e.view.PutSession(domain.SessionState{Session: long, Revision: 1})
	if n := e.view.Sweep(t0.Add(10 * time.Minute)); n != 1 {
		t.Fatalf("Sweep forgot %d sessions, want 1", n)
	}
	if got := e.view.SessionsOfUser("user-ada"); len(got) != 1 || got[0].Session.SessionID != "session-long" {
		t.Errorf("SessionsOfUser after a sweep = %+v, want session-long", got)
	}

	if page, more := e.view.ProfilesPage("", 1); len(page) != 1 || more {
		t.Errorf("a page of exactly the one profile: %d profiles, more %v", len(page), more)
	}

	ev, _ := domain.NewEvent("evt-nouser", domain.EventUserCreated, "user-x", t0, map[string]any{})
	if err := e.view.ApplyEvent(1, ev); err == nil {
		t.Error("a user.created naming no user was applied")
	}
}
