package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Tests of ProfileChange through its exported API (found missing by
// mutation testing, make mutate): versions, what reaches the store, the
// first JWKS fetch, refusals, change ids and a view that cannot catch up.

// recProfiles is a ProfileStore that records every write.
type recProfiles struct {
	mu     sync.Mutex
	writes []profileWrite
}

type profileWrite struct {
	p       domain.Profile
	deleted bool
}

func (r *recProfiles) PutProfile(_ context.Context, p domain.Profile, deleted bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, profileWrite{p, deleted})
	return nil
}

func (r *recProfiles) all() []profileWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]profileWrite(nil), r.writes...)
}

// recKeys is a KeySource that records Ensure calls.
type recKeys struct {
	fakeKeys
	mu      sync.Mutex
	ensured []string
}

func (k *recKeys) Ensure(_ context.Context, url string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ensured = append(k.ensured, url)
	return nil
}

func (k *recKeys) calls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.ensured...)
}

// stuckBarrier is a Barrier whose view cannot catch up.
type stuckBarrier struct{}

var errStuck = errors.New("stuckBarrier: events stream unreachable")

func (stuckBarrier) CatchUp(context.Context) error { return errStuck }

type profileFixture struct {
	e     *env
	store *recProfiles
	keys  *recKeys
	h     *handlers.ProfileChange
}

// newProfileFixture: a ProfileChange on e's fakes whose events are
// applied to e's view, as the worker does.
func newProfileFixture(t *testing.T, b handlers.Barrier) *profileFixture {
	t.Helper()
	e := newEnv(t, false)
	if b == nil {
		b = e.barrier
	}
	f := &profileFixture{e: e, store: &recProfiles{}, keys: &recKeys{}}
	done := &handlers.Completer{Outcomes: e.outcomes, Pub: e.pub, Apply: func(ev domain.Event) { _ = e.view.ApplyEvent(0, ev) }}
	f.h = handlers.NewProfileChange(e.view, b, done, e.clock.Now, f.store, f.keys, domain.ProfileRules{})
	return f
}

func (f *profileFixture) spec(t *testing.T, id, name string) map[string]any {
	return map[string]any{"profile_id": id, "name": name, "issuer": f.e.idp.iss, "audience": f.e.idp.aud,
		"public_keys": []string{f.e.idp.publicPEM(t)}, "attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}
}

// run sends one profile command and decodes its reply.
func (f *profileFixture) run(t *testing.T, cmd map[string]any) (handlers.ProfileEventData, error) {
	t.Helper()
	data, _ := json.Marshal(cmd)
	out, err := f.h.Handle(context.Background(), handlers.Input{Data: data, StreamSeq: 99})
	if err != nil {
		return handlers.ProfileEventData{}, err
	}
	var reply handlers.ProfileEventData
	if err := json.Unmarshal(out.Reply, &reply); err != nil {
		t.Fatalf("reply %s: %v", out.Reply, err)
	}
	return reply, nil
}

// TestProfileChangeLifecycle: create, update and delete each bump the
// version by one, write the profile to the store (deleted only by the
// delete), publish the matching event and reach the view; a static-key
// profile never asks the key source for a fetch.
func TestProfileChangeLifecycle(t *testing.T) {
	t.Parallel()
	f := newProfileFixture(t, nil)
	const id = "trusted-auth-token-profile-life"

	steps := []struct {
		cmd     map[string]any
		version int64
		event   string
		deleted bool
		name    string
	}{
		{map[string]any{"change_id": "p-1", "op": "upsert", "profile": f.spec(t, id, "First")}, 1, domain.EventProfileCreated, false, "First"},
		{map[string]any{"change_id": "p-2", "op": "upsert", "expected_version": 1, "profile": f.spec(t, id, "Second")}, 2, domain.EventProfileUpdated, false, "Second"},
		{map[string]any{"change_id": "p-3", "op": "delete", "expected_version": 2, "profile_id": id}, 3, domain.EventProfileDeleted, true, "Second"},
	}
	for i, s := range steps {
		f.e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		reply, err := f.run(t, s.cmd)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		if reply.StatusCode != 200 || reply.ErrorType != "" || reply.Profile == nil {
			t.Fatalf("step %d: reply %+v", i+1, reply)
		}
		if reply.Profile.Version != s.version || reply.Profile.Name != s.name {
			t.Errorf("step %d: reply names version %d %q, want %d %q", i+1, reply.Profile.Version, reply.Profile.Name, s.version, s.name)
		}
		if !reply.Profile.CreatedAt.Equal(t0) || !reply.Profile.UpdatedAt.Equal(t0.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("step %d: created %v updated %v", i+1, reply.Profile.CreatedAt, reply.Profile.UpdatedAt)
		}
		writes := f.store.all()
		if len(writes) != i+1 {
			t.Fatalf("step %d: %d store writes", i+1, len(writes))
		}
		if w := writes[i]; w.p.ProfileID != id || w.p.Version != s.version || w.deleted != s.deleted {
			t.Errorf("step %d: stored %s v%d deleted=%v, want v%d deleted=%v", i+1, w.p.ProfileID, w.p.Version, w.deleted, s.version, s.deleted)
		}
		if evs := f.e.pub.OfType(s.event); len(evs) != 1 || evs[0].Subject != id {
			t.Errorf("step %d: %d %s events %+v", i+1, len(evs), s.event, evs)
		}
		p, live := f.e.view.Profile(id)
		if live == s.deleted {
			t.Errorf("step %d: in the view: %v", i+1, live)
		}
		if live && p.Version != s.version {
			t.Errorf("step %d: the view holds version %d", i+1, p.Version)
		}
	}
	if calls := f.keys.calls(); len(calls) != 0 {
		t.Errorf("a static-key profile asked for JWKS fetches: %v", calls)
	}

	// The same change again is answered from its outcome: nothing more is
	// stored or published.
	events := len(f.e.pub.Events())
	reply, err := f.run(t, steps[1].cmd)
	if err != nil || reply.Profile == nil || reply.Profile.Version != 2 {
		t.Fatalf("repeat of p-2: %+v %v", reply, err)
	}
	if n := len(f.store.all()); n != 3 {
		t.Errorf("the repeat wrote the store: %d writes", n)
	}
	if n := len(f.e.pub.Events()); n != events {
		t.Errorf("the repeat published %d events", n-events)
	}
}

// TestProfileChangeJWKSProfileIsFetchedOnce: a created or changed JWKS
// profile gets one first fetch of its jwks_url.
func TestProfileChangeJWKSProfileIsFetchedOnce(t *testing.T) {
	t.Parallel()
	f := newProfileFixture(t, nil)
	spec := f.spec(t, "trusted-auth-token-profile-jwks", "JWKS")
	delete(spec, "public_keys")
	spec["jwks_url"] = "https://idp.example/.well-known/jwks.json"
	reply, err := f.run(t, map[string]any{"change_id": "j-1", "op": "upsert", "profile": spec})
	if err != nil || reply.StatusCode != 200 {
		t.Fatalf("create: %+v %v", reply, err)
	}
	if calls := f.keys.calls(); len(calls) != 1 || calls[0] != spec["jwks_url"] {
		t.Errorf("Ensure calls %v, want one of %s", calls, spec["jwks_url"])
	}
}

// TestProfileChangeRefusalsStoreNothing: a refused command (a version
// conflict, an unknown profile, a change id outside the alphabet) gets its
// error in the reply and a profile.rejected event, and writes nothing.
func TestProfileChangeRefusalsStoreNothing(t *testing.T) {
	t.Parallel()
	f := newProfileFixture(t, nil)
	if _, err := f.run(t, map[string]any{"change_id": "ok-1", "op": "upsert", "profile": f.spec(t, "trusted-auth-token-profile-a", "A")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  map[string]any
		want *domain.Error
	}{
		{"update at a stale version", map[string]any{"change_id": "r-1", "op": "upsert", "expected_version": 7, "profile": f.spec(t, "trusted-auth-token-profile-a", "B")}, domain.ErrVersionConflict},
		{"create expecting a version", map[string]any{"change_id": "r-2", "op": "upsert", "expected_version": 1, "profile": f.spec(t, "trusted-auth-token-profile-new", "B")}, domain.ErrVersionConflict},
		{"delete at a stale version", map[string]any{"change_id": "r-3", "op": "delete", "expected_version": 3, "profile_id": "trusted-auth-token-profile-a"}, domain.ErrVersionConflict},
		{"delete of an unknown profile", map[string]any{"change_id": "r-4", "op": "delete", "profile_id": "trusted-auth-token-profile-none"}, domain.ErrProfileNotFound},
		{"a change id outside the alphabet", map[string]any{"change_id": "bad id!", "op": "upsert", "profile": f.spec(t, "trusted-auth-token-profile-a", "C")}, domain.ErrInvalidRequest},
	} {
		writes := len(f.store.all())
		rejected := len(f.e.pub.OfType(domain.EventProfileRejected))
		reply, err := f.run(t, tc.cmd)
		if err != nil {
			t.Fatalf("%s: %v (a refusal is an outcome, not an error)", tc.name, err)
		}
		if reply.ErrorType != tc.want.Code || reply.StatusCode != tc.want.Status || reply.Profile != nil {
			t.Errorf("%s: reply %+v, want %s", tc.name, reply, tc.want.Code)
		}
		if n := len(f.store.all()); n != writes {
			t.Errorf("%s: wrote the store", tc.name)
		}
		if n := len(f.e.pub.OfType(domain.EventProfileRejected)); n != rejected+1 {
			t.Errorf("%s: %d profile.rejected events", tc.name, n-rejected)
		}
	}
	// Each profile.rejected names the profile the command was about, from
	// the spec of an upsert or the profile_id of a delete.
	rejected := f.e.pub.OfType(domain.EventProfileRejected)
	for i, want := range []string{"trusted-auth-token-profile-a", "trusted-auth-token-profile-new", "trusted-auth-token-profile-a", "trusted-auth-token-profile-none", "trusted-auth-token-profile-a"} {
		if i >= len(rejected) {
			break
		}
		var d handlers.ProfileEventData
		_ = json.Unmarshal(rejected[i].Data, &d)
		if rejected[i].Subject != want || d.ProfileID != want {
			t.Errorf("profile.rejected %d names %q (subject %q), want %q", i, d.ProfileID, rejected[i].Subject, want)
		}
	}
	if p, _ := f.e.view.Profile("trusted-auth-token-profile-a"); p.Version != 1 || p.Name != "A" {
		t.Errorf("the view holds %q v%d after refusals", p.Name, p.Version)
	}
}

// TestProfileChangeWithoutChangeID: a command with no change_id is
// identified by its stream position and applied.
func TestProfileChangeWithoutChangeID(t *testing.T) {
	t.Parallel()
	f := newProfileFixture(t, nil)
	reply, err := f.run(t, map[string]any{"op": "upsert", "profile": f.spec(t, "trusted-auth-token-profile-noid", "N")})
	if err != nil || reply.StatusCode != 200 || reply.Profile == nil || reply.Profile.Version != 1 {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	if evs := f.e.pub.OfType(domain.EventProfileCreated); len(evs) != 1 {
		t.Errorf("%d profile.created events", len(evs))
	}
}

// TestProfileChangeWaitsForTheView: when the view cannot catch up the
// command fails transiently (the consumer redelivers it): no outcome, no
// event, nothing stored.
func TestProfileChangeWaitsForTheView(t *testing.T) {
	t.Parallel()
	f := newProfileFixture(t, stuckBarrier{})
	_, err := f.run(t, map[string]any{"change_id": "w-1", "op": "upsert", "profile": f.spec(t, "trusted-auth-token-profile-w", "W")})
	if !errors.Is(err, errStuck) {
		t.Fatalf("err = %v, want the barrier's", err)
	}
	if handlers.Permanent(err) {
		t.Errorf("a view that cannot catch up is a permanent refusal")
	}
	if len(f.store.all()) != 0 || len(f.e.pub.Events()) != 0 {
		t.Errorf("stored %d, published %d", len(f.store.all()), len(f.e.pub.Events()))
	}
	if _, ok, _ := f.e.outcomes.Get(context.Background(), "profile:w-1"); ok {
		t.Errorf("an outcome was recorded")
	}
}
