package jwks

import (
	"context"
	"crypto/elliptic"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fleet is several caches (workers) on one fake clock, one loopback issuer
// and one shared store.
type fleet struct {
	srv    *jwksServer
	url    string
	clock  *fakeClock
	shared *MemoryShared
}

func newFleet(t *testing.T, keys ...jwk) *fleet {
	f := &fleet{srv: newJWKSServer(t, keys...), clock: newFakeClock(), shared: NewMemoryShared()}
	f.url = f.srv.start(t)
	return f
}

func (f *fleet) worker(cfg Config) *Cache {
	cfg.Fetcher = localFetcher(testTimeout)
	cfg.Now = f.clock.Now
	cfg.Shared = f.shared
	return NewCache(cfg)
}

func TestSharedStoreServesOtherWorkers(t *testing.T) {
	t.Parallel()
	f := newFleet(t, ecJWK(t, "k1", elliptic.P256()))
	ctx := t.Context()
	a, b := f.worker(Config{}), f.worker(Config{})

	if err := a.Ensure(ctx, f.url); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Minute)
	ev := &events{}
	c := f.worker(Config{OnChange: ev.onChange})
	for _, w := range []*Cache{b, c} {
		keys, err := w.Keys(ctx, f.url)
		if err != nil || !slices.Equal(kids(keys), []string{"k1"}) {
			t.Fatalf("Keys = %v, %v", kids(keys), err)
		}
	}
	if n := f.srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 for three workers", n)
	}
	// A worker that took the shared set reports it as its change and ages it
	// from the original fetch.
	if changes, _ := ev.waitFor(t, 1, 0); len(changes) != 1 || !slices.Equal(changes[0].added, []string{"k1"}) {
		t.Fatalf("changes = %+v", changes)
	}
	if st, _ := c.Status(f.url); st.Age != 5*time.Minute {
		t.Fatalf("age = %s, want 5m", st.Age)
	}
}

func TestSharedStoreRateLimitsUnknownKIDAcrossFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, ecJWK(t, "old", elliptic.P256()))
	ctx := t.Context()
	workers := []*Cache{f.worker(Config{}), f.worker(Config{}), f.worker(Config{})}
	for _, w := range workers {
		if err := w.Ensure(ctx, f.url); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(DefaultMinInterval)
	f.srv.update(func(s *jwksServer) { s.keys = []jwk{ecJWK(t, "new", elliptic.P256())} })
	before := f.srv.fetches.Load()

	// Every worker sees the unknown kid; only the first fetches, the others
	// take its set from the shared store.
	for _, w := range workers {
		keys, err := w.RefreshUnknownKID(ctx, f.url)
		if err != nil || !slices.Equal(kids(keys), []string{"new"}) {
			t.Fatalf("RefreshUnknownKID = %v, %v", kids(keys), err)
		}
	}
	if n := f.srv.fetches.Load() - before; n != 1 {
		t.Fatalf("fetches = %d, want 1 for the fleet", n)
	}
}

func TestStaleSharedSetBeatsNoKeys(t *testing.T) {
	t.Parallel()
	f := newFleet(t, ecJWK(t, "k1", elliptic.P256()))
	ctx := t.Context()
	if err := f.worker(Config{}).Ensure(ctx, f.url); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Hour)
	f.srv.update(func(s *jwksServer) { s.status = 500 })

	ev := &events{}
	late := f.worker(Config{OnFailure: ev.onFailure})
	keys, err := late.Keys(ctx, f.url)
	if err != nil || !slices.Equal(kids(keys), []string{"k1"}) {
		t.Fatalf("Keys = %v, %v; want the fleet's last good [k1]", kids(keys), err)
	}
	if _, failures := ev.waitFor(t, 0, 1); len(failures) != 1 {
		t.Fatalf("OnFailure called %d times, want 1 (the stale set must not hide the outage)", len(failures))
	}
	if st, _ := late.Status(f.url); st.Age != 3*time.Hour || st.Failures != 1 {
		t.Fatalf("status = %+v", st)
	}
}

// brokenShared fails every call, or serves a corrupt set.
type brokenShared struct {
	corrupt bool
}

func (s brokenShared) Get(context.Context, string) (SharedEntry, bool, error) {
	if s.corrupt {
		return SharedEntry{Raw: []byte("{"), FetchedAt: time.Now()}, true, nil
	}
	return SharedEntry{}, false, errors.New("kv down")
}

func (s brokenShared) Put(context.Context, string, SharedEntry) error {
	if s.corrupt {
		return nil
	}
	return errors.New("kv down")
}

func TestBrokenSharedStoreFallsBackToFetching(t *testing.T) {
	t.Parallel()
	for _, corrupt := range []bool{false, true} {
		srv := newJWKSServer(t, ecJWK(t, "k1", elliptic.P256()))
		url := srv.start(t)
		var mu sync.Mutex
		var sharedErrs []error
		c := NewCache(Config{
			Fetcher: localFetcher(testTimeout),
			Shared:  brokenShared{corrupt: corrupt},
			OnSharedError: func(_ string, err error) {
				mu.Lock()
				defer mu.Unlock()
				sharedErrs = append(sharedErrs, err)
			},
		})
		keys, err := c.Keys(t.Context(), url)
		if err != nil || len(keys) != 1 {
			t.Fatalf("corrupt=%v: Keys = %v, %v", corrupt, kids(keys), err)
		}
		mu.Lock()
		want := map[bool]int{false: 2, true: 1}[corrupt] // get+put, or parse
		if len(sharedErrs) != want {
			t.Errorf("corrupt=%v: OnSharedError called %d times (%v), want %d", corrupt, len(sharedErrs), sharedErrs, want)
		}
		mu.Unlock()
	}
}

func TestMemorySharedCopies(t *testing.T) {
	t.Parallel()
	m := NewMemoryShared()
	raw := []byte("abc")
	if err := m.Put(t.Context(), "u", SharedEntry{Raw: raw}); err != nil {
		t.Fatal(err)
	}
	raw[0] = 'x'
	e, ok, err := m.Get(t.Context(), "u")
	if err != nil || !ok || string(e.Raw) != "abc" {
		t.Fatalf("Get = %q, %v, %v", e.Raw, ok, err)
	}
	if _, ok, _ := m.Get(t.Context(), "other"); ok {
		t.Fatal("Get of a missing URL reported ok")
	}
}
