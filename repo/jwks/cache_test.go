package jwks

import (
	"context"
	"crypto/elliptic"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// harness is a Cache on a fake clock in front of a real loopback JWKS
// server.
type harness struct {
	srv   *jwksServer
	url   string
	clock *fakeClock
	ev    *events
	cache *Cache
}

func newHarness(t *testing.T, cfg Config, keys ...jwk) *harness {
	t.Helper()
	h := &harness{srv: newJWKSServer(t, keys...), clock: newFakeClock(), ev: &events{}}
	h.url = h.srv.start(t)
	if cfg.Fetcher == nil {
		cfg.Fetcher = localFetcher(testTimeout)
	}
	cfg.Now = h.clock.Now
	cfg.OnChange = h.ev.onChange
	cfg.OnFailure = h.ev.onFailure
	h.cache = NewCache(cfg)
	return h
}

func kids(keys []domain.PublicKey) []string { return kidsOf(keys) }

func TestKeysFetchesOnceThenServesFromMemory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "a", elliptic.P256()), ecJWK(t, "b", elliptic.P384()))

	keys, err := h.cache.Keys(t.Context(), h.url)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(keys); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("kids = %v", got)
	}
	h.srv.update(func(s *jwksServer) { s.status = 500 })
	for range 100 {
		if _, err := h.cache.Keys(t.Context(), h.url); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	changes, _ := h.ev.waitFor(t, 1, 0)
	if len(changes) != 1 || !slices.Equal(changes[0].added, []string{"a", "b"}) || changes[0].removed != nil {
		t.Fatalf("changes = %+v, want one with all kids added", changes)
	}
}

func TestRefreshUnknownKIDPicksUpRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "old", elliptic.P256()))
	ctx := t.Context()
	if err := h.cache.Ensure(ctx, h.url); err != nil {
		t.Fatal(err)
	}
	newKey := ecJWK(t, "new", elliptic.P256())
	h.srv.update(func(s *jwksServer) { s.keys = []jwk{newKey} })

	// Within MinInterval of the last fetch: no fetch, current keys.
	h.clock.Advance(DefaultMinInterval - time.Second)
	keys, err := h.cache.RefreshUnknownKID(ctx, h.url)
	if err != nil || !slices.Equal(kids(keys), []string{"old"}) || h.srv.fetches.Load() != 1 {
		t.Fatalf("within MinInterval: kids %v err %v fetches %d; want [old], nil, 1", kids(keys), err, h.srv.fetches.Load())
	}

	h.clock.Advance(time.Second)
	keys, err = h.cache.RefreshUnknownKID(ctx, h.url)
	if err != nil || !slices.Equal(kids(keys), []string{"new"}) {
		t.Fatalf("after MinInterval: kids %v err %v; want [new]", kids(keys), err)
	}
	if keys, _ := h.cache.Keys(ctx, h.url); !slices.Equal(kids(keys), []string{"new"}) {
		t.Fatalf("Keys after rotation = %v", kids(keys))
	}
	changes, _ := h.ev.waitFor(t, 2, 0)
	last := changes[len(changes)-1]
	if !slices.Equal(last.added, []string{"new"}) || !slices.Equal(last.removed, []string{"old"}) {
		t.Fatalf("last change = %+v, want +new -old", last)
	}
}

func TestRefreshUnknownKIDFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "old", elliptic.P256()))
	ctx := t.Context()
	if err := h.cache.Ensure(ctx, h.url); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(DefaultMinInterval)
	h.srv.update(func(s *jwksServer) {
		s.keys = []jwk{ecJWK(t, "new", elliptic.P256())}
		s.delay = 50 * time.Millisecond // so that most callers join the fetch in flight
	})
	before := h.srv.fetches.Load()

	flood := func() {
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				keys, err := h.cache.RefreshUnknownKID(ctx, h.url)
				if err != nil || !slices.Equal(kids(keys), []string{"new"}) {
					t.Errorf("RefreshUnknownKID = %v, %v; want [new]", kids(keys), err)
				}
			})
		}
		wg.Wait()
	}
	flood()
	if n := h.srv.fetches.Load() - before; n != 1 {
		t.Fatalf("first flood: %d fetches, want exactly 1", n)
	}
	h.clock.Advance(DefaultMinInterval - time.Second)
	flood()
	if n := h.srv.fetches.Load() - before; n != 1 {
		t.Fatalf("second flood within MinInterval: %d fetches in all, want still 1", n)
	}
}

func TestLastGoodKeysSurviveOutage(t *testing.T) {
	t.Parallel()
	// A short timeout so the hanging issuer fails fast.
	h := newHarness(t, Config{Fetcher: localFetcher(2 * time.Second)}, ecJWK(t, "good", elliptic.P256()))
	ctx := t.Context()
	if err := h.cache.Ensure(ctx, h.url); err != nil {
		t.Fatal(err)
	}
	outages := []struct {
		name    string
		breakIt func(s *jwksServer)
	}{
		{"status 500", func(s *jwksServer) { s.status = 500 }},
		{"hangs past the timeout", func(s *jwksServer) { s.status, s.hang = 0, true }},
		{"garbage", func(s *jwksServer) { s.hang, s.body = false, []byte("<html>oops</html>") }},
	}
	for i, o := range outages {
		h.srv.update(o.breakIt)
		h.clock.Advance(DefaultMinInterval)
		keys, err := h.cache.RefreshUnknownKID(ctx, h.url)
		if !errors.Is(err, domain.ErrJWKSUnavailable) {
			t.Errorf("%s: RefreshUnknownKID err = %v, want ErrJWKSUnavailable", o.name, err)
		}
		if !slices.Equal(kids(keys), []string{"good"}) {
			t.Errorf("%s: RefreshUnknownKID keys = %v, want the last good [good]", o.name, kids(keys))
		}
		if keys, err := h.cache.Keys(ctx, h.url); err != nil || !slices.Equal(kids(keys), []string{"good"}) {
			t.Errorf("%s: Keys = %v, %v; want [good]", o.name, kids(keys), err)
		}
		if err := h.cache.Ensure(ctx, h.url); !errors.Is(err, domain.ErrJWKSUnavailable) {
			t.Errorf("%s: Ensure err = %v, want ErrJWKSUnavailable", o.name, err)
		}
		st, _ := h.cache.Status(h.url)
		if st.Failures != 2*(i+1) || st.LastError == nil {
			t.Errorf("%s: status %+v, want %d failures", o.name, st, 2*(i+1))
		}
	}
	_, failures := h.ev.waitFor(t, 0, 2*len(outages))
	if len(failures) != 2*len(outages) {
		t.Errorf("OnFailure called %d times, want %d", len(failures), 2*len(outages))
	}

	h.srv.update(func(s *jwksServer) { s.body = nil; s.keys = []jwk{ecJWK(t, "next", elliptic.P256())} })
	h.clock.Advance(DefaultMinInterval)
	if keys, err := h.cache.RefreshUnknownKID(ctx, h.url); err != nil || !slices.Equal(kids(keys), []string{"next"}) {
		t.Fatalf("after recovery: %v, %v", kids(keys), err)
	}
	if st, _ := h.cache.Status(h.url); st.Failures != 0 || st.LastError != nil {
		t.Fatalf("after recovery: status %+v", st)
	}
}

func TestKeysWithoutAnyKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "k", elliptic.P256()))
	h.srv.update(func(s *jwksServer) { s.status = 503 })
	ctx := t.Context()

	if _, err := h.cache.Keys(ctx, h.url); !errors.Is(err, domain.ErrJWKSUnavailable) {
		t.Fatalf("Keys on a down URL: err = %v, want ErrJWKSUnavailable", err)
	}
	// Moments later (by the clock) every caller is answered without a fetch.
	for range 50 {
		if _, err := h.cache.Keys(ctx, h.url); !errors.Is(err, domain.ErrJWKSUnavailable) {
			t.Fatal(err)
		}
	}
	if _, err := h.cache.RefreshUnknownKID(ctx, h.url); !errors.Is(err, domain.ErrJWKSUnavailable) {
		t.Fatal(err)
	}
	if n := h.srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// After the short backoff a caller tries again, and gets keys once the
	// issuer is back.
	h.srv.update(func(s *jwksServer) { s.status = 0 })
	h.clock.Advance(emptyRetryMin)
	if keys, err := h.cache.Keys(ctx, h.url); err != nil || len(keys) != 1 {
		t.Fatalf("Keys after recovery: %v, %v", kids(keys), err)
	}
}

func TestWaitKeysGivesUpAfterMaxWait(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
	srv.status = 500
	url := srv.start(t)
	c := NewCache(Config{Fetcher: localFetcher(testTimeout)}) // real clock

	const maxWait = time.Second
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			keys, err := c.WaitKeys(t.Context(), url, maxWait)
			if !errors.Is(err, domain.ErrJWKSUnavailable) || keys != nil {
				t.Errorf("WaitKeys = %v, %v; want ErrJWKSUnavailable", kids(keys), err)
			}
		})
	}
	wg.Wait()
	// Loose real-time bounds; TestWaitKeysInBubble checks the exact pace.
	if d := time.Since(start); d < maxWait || d > maxWait+3*time.Second {
		t.Errorf("WaitKeys took %s, want about %s", d, maxWait)
	}
	// Attempts at about 0, 0.2 and 0.6s: the pace is per URL, not per
	// caller.
	if n := srv.fetches.Load(); n < 1 || n > 4 {
		t.Errorf("fetches = %d, want 1..4 for 20 callers", n)
	}
}

func TestWaitKeysGetsKeysWhenIssuerRecovers(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
	srv.status = 500
	url := srv.start(t)
	c := NewCache(Config{Fetcher: localFetcher(testTimeout)})
	time.AfterFunc(300*time.Millisecond, func() { srv.update(func(s *jwksServer) { s.status = 0 }) })
	keys, err := c.WaitKeys(t.Context(), url, 5*time.Second)
	if err != nil || !slices.Equal(kids(keys), []string{"k"}) {
		t.Fatalf("WaitKeys = %v, %v", kids(keys), err)
	}
}

func TestCacheControlHonouredAndClamped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", DefaultRefreshInterval},
		{"max-age=300", 5 * time.Minute},
		{"max-age=5", DefaultMinRefresh},
		{"no-store", DefaultMinRefresh},
		{"max-age=31536000", DefaultMaxRefresh},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{}, ecJWK(t, "k", elliptic.P256()))
			h.srv.cacheControl = tc.header
			if err := h.cache.Ensure(t.Context(), h.url); err != nil {
				t.Fatal(err)
			}
			st, _ := h.cache.Status(h.url)
			next := st.NextRefresh.Sub(st.FetchedAt)
			// The schedule refreshes up to 10% early so a fleet spreads out.
			if next > tc.want || next < tc.want-tc.want/10 {
				t.Fatalf("next refresh after %s, want within [%s, %s]", next, tc.want-tc.want/10, tc.want)
			}
		})
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "k", elliptic.P256()))
	if err := h.cache.Ensure(t.Context(), h.url); err != nil {
		t.Fatal(err)
	}
	h.cache.Forget(h.url)
	if _, ok := h.cache.Status(h.url); ok {
		t.Fatal("forgotten URL still known")
	}
	if len(h.cache.Statuses()) != 0 {
		t.Fatal("Statuses lists a forgotten URL")
	}
	if _, err := h.cache.Keys(t.Context(), h.url); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (forgotten keys are fetched again)", n)
	}
}

func TestCallerCancellationDoesNotFailSharedFetch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "k", elliptic.P256()))
	h.srv.delay = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := h.cache.Keys(ctx, h.url); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, domain.ErrJWKSUnavailable) {
		t.Fatalf("cancelled caller: err = %v", err)
	}
	// The fetch the cancelled caller started still completes for others.
	keys, err := h.cache.WaitKeys(t.Context(), h.url, time.Second)
	if err != nil || len(keys) != 1 {
		t.Fatalf("WaitKeys = %v, %v", kids(keys), err)
	}
	if n := h.srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{MinRefresh: time.Hour, MaxRefresh: time.Minute, MinInterval: -1}.Validate()
	for _, want := range []string{"Fetcher is required", "MinInterval is negative", "exceeds MaxRefresh"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if err := (Config{Fetcher: &Fetcher{}}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestRefreshUnknownKIDWithinIntervalOfFailedFetchIsUnavailable: while the
// issuer is down, every token with a new kid is "could not check" (503),
// not only the first one in each minimum interval; the others were refused
// as invalid (401) before, a final answer the worker could not back.
func TestRefreshUnknownKIDWithinIntervalOfFailedFetchIsUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, ecJWK(t, "good", elliptic.P256()))
	ctx := t.Context()
	if err := h.cache.Ensure(ctx, h.url); err != nil {
		t.Fatal(err)
	}
	h.srv.update(func(s *jwksServer) { s.status = 500 })
	h.clock.Advance(DefaultMinInterval)
	if _, err := h.cache.RefreshUnknownKID(ctx, h.url); !errors.Is(err, domain.ErrJWKSUnavailable) {
		t.Fatalf("first unknown kid in the outage: err = %v, want ErrJWKSUnavailable", err)
	}
	h.clock.Advance(time.Second) // within MinInterval of the failed attempt
	keys, err := h.cache.RefreshUnknownKID(ctx, h.url)
	if !errors.Is(err, domain.ErrJWKSUnavailable) {
		t.Errorf("second unknown kid a second later: err = %v, want ErrJWKSUnavailable", err)
	}
	if !slices.Equal(kids(keys), []string{"good"}) {
		t.Errorf("keys = %v, want the last good [good]", kids(keys))
	}
	if n := h.srv.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (the rate limit holds)", n)
	}
}
