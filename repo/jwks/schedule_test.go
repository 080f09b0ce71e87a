package jwks

import (
	"context"
	"crypto/elliptic"
	"errors"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tat-worker/attest/domain"
)

const issuerURL = "https://issuer.example/.well-known/jwks.json"

// runCache starts c.Run in the bubble and returns a stop func that cancels
// it and waits for it to return.
func runCache(t *testing.T, c *Cache) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

// sleep advances the bubble's clock by d and lets every goroutine settle.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestScheduleRefreshesEachInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
		c := NewCache(Config{Fetcher: memFetcher(srv), Now: time.Now})
		stop := runCache(t, c)
		defer stop()
		if err := c.Ensure(t.Context(), issuerURL); err != nil {
			t.Fatal(err)
		}

		// Jitter refreshes in [90%, 100%] of the interval.
		sleep(DefaultRefreshInterval*9/10 - time.Second)
		if n := srv.fetches.Load(); n != 1 {
			t.Fatalf("before the interval: fetches = %d, want 1", n)
		}
		sleep(DefaultRefreshInterval/10 + 2*time.Second)
		if n := srv.fetches.Load(); n != 2 {
			t.Fatalf("after one interval: fetches = %d, want 2", n)
		}
		sleep(10 * DefaultRefreshInterval)
		if n := srv.fetches.Load(); n < 12 || n > 14 {
			t.Fatalf("after 11 intervals: fetches = %d, want 12..14", n)
		}
		st, _ := c.Status(issuerURL)
		if st.Age > DefaultRefreshInterval {
			t.Fatalf("keys are %s old", st.Age)
		}
	})
}

func TestScheduleHonoursMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
		srv.cacheControl = "max-age=120"
		c := NewCache(Config{Fetcher: memFetcher(srv), Now: time.Now})
		stop := runCache(t, c)
		defer stop()
		if err := c.Ensure(t.Context(), issuerURL); err != nil {
			t.Fatal(err)
		}
		sleep(20 * time.Minute)
		// Every 108..120s: 10 or 11 refreshes after the first fetch.
		if n := srv.fetches.Load(); n < 11 || n > 12 {
			t.Fatalf("fetches = %d, want 11..12", n)
		}
	})
}

func TestScheduleRetriesFailuresWithBackoffAndKeepsKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newJWKSServer(t, ecJWK(t, "old", elliptic.P256()))
		ev := &events{}
		c := NewCache(Config{Fetcher: memFetcher(srv), Now: time.Now,
			OnChange: ev.onChange, OnFailure: ev.onFailure})
		stop := runCache(t, c)
		defer stop()
		if err := c.Ensure(t.Context(), issuerURL); err != nil {
			t.Fatal(err)
		}
		srv.update(func(s *jwksServer) { s.status = 500 })

		// The refresh due at T in [13.5m, 15m] fails; retries follow at
		// T+30s, T+90s, T+210s, T+450s. At 19m exactly four have failed.
		sleep(19 * time.Minute)
		st, _ := c.Status(issuerURL)
		if st.Failures != 4 || srv.fetches.Load() != 5 {
			t.Fatalf("at 19m: %d failures, %d fetches; want 4 and 5", st.Failures, srv.fetches.Load())
		}
		keys, err := c.Keys(t.Context(), issuerURL)
		if err != nil || !slices.Equal(kids(keys), []string{"old"}) {
			t.Fatalf("during the outage Keys = %v, %v; want the last good [old]", kids(keys), err)
		}
		if _, failures := ev.snapshot(); len(failures) != 4 {
			t.Fatalf("OnFailure called %d times, want 4", len(failures))
		}

		// The issuer comes back with a rotated key; the next retry (before
		// 22.5m) picks it up and reports the change.
		srv.update(func(s *jwksServer) { s.status = 0; s.keys = []jwk{ecJWK(t, "new", elliptic.P256())} })
		sleep(4 * time.Minute)
		st, _ = c.Status(issuerURL)
		if st.Failures != 0 || !slices.Equal(st.KIDs, []string{"new"}) {
			t.Fatalf("after recovery: %+v", st)
		}
		changes, _ := ev.snapshot()
		last := changes[len(changes)-1]
		if !slices.Equal(last.added, []string{"new"}) || !slices.Equal(last.removed, []string{"old"}) {
			t.Fatalf("last change = %+v, want +new -old", last)
		}
		if d := st.NextRefresh.Sub(st.FetchedAt); d < DefaultRefreshInterval*9/10 {
			t.Fatalf("after recovery the next refresh is in %s, want the normal interval", d)
		}
	})
}

func TestScheduleForgetStopsRefreshing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
		c := NewCache(Config{Fetcher: memFetcher(srv), Now: time.Now})
		stop := runCache(t, c)
		defer stop()
		if err := c.Ensure(t.Context(), issuerURL); err != nil {
			t.Fatal(err)
		}
		c.Forget(issuerURL)
		sleep(3 * DefaultRefreshInterval)
		if n := srv.fetches.Load(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
	})
}

// TestFleetSharesFetches runs two workers' caches against one issuer: with a
// shared store the issuer sees about one fetch per interval in all, without
// it one per interval per worker.
func TestFleetSharesFetches(t *testing.T) {
	const intervals = 10
	count := func(shared SharedStore) int64 {
		var n int64
		synctest.Test(t, func(t *testing.T) {
			srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
			for range 2 {
				c := NewCache(Config{Fetcher: memFetcher(srv), Now: time.Now, Shared: shared})
				stop := runCache(t, c)
				defer stop()
				if err := c.Ensure(t.Context(), issuerURL); err != nil {
					t.Fatal(err)
				}
			}
			sleep(intervals*DefaultRefreshInterval + time.Second)
			n = srv.fetches.Load()
		})
		return n
	}
	withShared := count(NewMemoryShared())
	// One initial fetch, then one per 90..100% of an interval.
	if withShared < 1+intervals || withShared > 1+intervals*10/9+1 {
		t.Errorf("with a shared store: %d fetches, want about %d", withShared, 1+intervals)
	}
	alone := count(nil)
	if alone < 2*(1+intervals) {
		t.Errorf("without a shared store: %d fetches, want at least %d", alone, 2*(1+intervals))
	}
	t.Logf("fetches over %d intervals for 2 workers: %d shared, %d alone", intervals, withShared, alone)
}

func TestWaitKeysInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
		srv.status = 503
		c := NewCache(Config{Fetcher: memFetcher(srv), Now: time.Now})
		start := time.Now()
		_, err := c.WaitKeys(t.Context(), issuerURL, 3*time.Second)
		if !errors.Is(err, domain.ErrJWKSUnavailable) {
			t.Fatalf("err = %v, want ErrJWKSUnavailable", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("WaitKeys returned after %s, want exactly 3s", d)
		}
		// Attempts at 0, 0.2, 0.6, 1.4 and 2.4s (backoff 200ms doubling to 1s).
		if n := srv.fetches.Load(); n != 5 {
			t.Fatalf("fetches = %d, want 5", n)
		}
		synctest.Wait()
	})
}

// TestRunJoinsFetchesOnShutdown: Run returns only after the fetch it started
// has ended, and that fetch is cancelled with Run's context.
func TestRunJoinsFetchesOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newJWKSServer(t, ecJWK(t, "k", elliptic.P256()))
		// No timeouts but Run's context: the hanging fetch lasts until stop.
		f := &Fetcher{Client: &http.Client{Transport: handlerTransport{srv}}}
		c := NewCache(Config{Fetcher: f, Now: time.Now, FetchTimeout: 24 * time.Hour})
		if err := c.Ensure(t.Context(), issuerURL); err != nil {
			t.Fatal(err)
		}
		srv.update(func(s *jwksServer) { s.hang = true })
		stop := runCache(t, c)
		sleep(DefaultRefreshInterval) // the scheduled fetch is now hanging
		if n := srv.fetches.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2", n)
		}
		start := time.Now()
		stop()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Run took %s to return", d)
		}
	})
}
