package jwks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tat-worker/attest/domain"
)

// mode says why a fetch runs; it decides when a SharedStore entry is fresh
// enough to use instead.
type mode int

const (
	// modeEnsure: a profile changed or a URL has no keys yet.
	modeEnsure mode = iota
	// modeSchedule: the URL's refresh time came.
	modeSchedule
	// modeUnknownKID: a token named a kid we do not hold.
	modeUnknownKID
)

// outcome is what one refresh produced.
type outcome struct {
	keys      []domain.PublicKey // nil: nothing new
	fetchedAt time.Time
	maxAge    time.Duration
	fetchErr  error // the fetch failed (keys may still come from a stale shared entry)
}

// startLocked marks e as fetching and starts the refresh in a goroutine.
// detach keeps one caller's cancellation from failing the fetch others
// share; the fetch is bounded by FetchTimeout instead.
func (c *Cache) startLocked(ctx context.Context, url string, e *entry, m mode, detach bool) *call {
	cl := &call{done: make(chan struct{})}
	e.inflight = cl
	e.lastAttempt = c.cfg.Now()
	if detach {
		ctx = context.WithoutCancel(ctx)
	}
	run := func() {
		fctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
		defer cancel()
		c.refresh(fctx, url, e, cl, m)
	}
	if c.draining {
		go run()
	} else {
		c.active.Go(run)
	}
	return cl
}

// refresh obtains a set for url, applies it to e and completes cl.
func (c *Cache) refresh(ctx context.Context, url string, e *entry, cl *call, m mode) {
	c.mu.Lock()
	haveAt, haveKeys := e.fetchedAt, len(e.keys) > 0
	c.mu.Unlock()

	out := c.obtain(ctx, url, m, haveAt, haveKeys)

	c.mu.Lock()
	current := c.entries[url] == e
	e.inflight = nil
	var added, removed []string
	var prev, mine chan struct{}
	if current {
		added, removed = c.applyLocked(e, out)
		prev, mine = e.notified, make(chan struct{})
		e.notified = mine
	}
	c.mu.Unlock()

	// Release the waiting callers first: a slow callback (publishing an
	// event) must not hold up token checks.
	cl.err = out.fetchErr
	close(cl.done)
	c.signal()
	if current {
		// In the order the refreshes were applied: a later refresh's
		// change must not be reported before an earlier one's.
		if prev != nil {
			<-prev
		}
		if out.fetchErr != nil && c.cfg.OnFailure != nil {
			c.cfg.OnFailure(url, out.fetchErr)
		}
		if (len(added) > 0 || len(removed) > 0) && c.cfg.OnChange != nil {
			c.cfg.OnChange(url, added, removed)
		}
		close(mine)
	}
}

// obtain takes a fresh enough set from the SharedStore, or fetches one and
// shares it. When the fetch fails and the URL has no keys at all, a stale
// shared set (the fleet's last good keys) is better than none.
func (c *Cache) obtain(ctx context.Context, url string, m mode, haveAt time.Time, haveKeys bool) outcome {
	var stale *SharedEntry
	if c.cfg.Shared != nil {
		se, ok, err := c.cfg.Shared.Get(ctx, url)
		switch {
		case err != nil:
			c.sharedError(url, fmt.Errorf("get: %w", err))
		case !ok:
		case c.sharedFresh(se, m):
			if haveKeys && !se.FetchedAt.After(haveAt) {
				c.sharedUsed(url)
				return outcome{} // we already hold the fleet's latest set
			}
			keys, err := ParseJWKS(se.Raw)
			if err == nil {
				c.sharedUsed(url)
				return outcome{keys: keys, fetchedAt: se.FetchedAt, maxAge: se.MaxAge}
			}
			c.sharedError(url, fmt.Errorf("parse shared set: %w", err))
		default:
			stale = &se
		}
	}

	res, err := c.cfg.Fetcher.Fetch(ctx, url)
	if err == nil && len(res.Keys) == 0 {
		err = ErrNoUsableKeys
	}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.Fetched(url, err)
	}
	if err != nil {
		out := outcome{fetchErr: err}
		if !haveKeys && stale != nil {
			if keys, perr := ParseJWKS(stale.Raw); perr == nil {
				out.keys, out.fetchedAt, out.maxAge = keys, stale.FetchedAt, stale.MaxAge
			}
		}
		return out
	}
	now := c.cfg.Now()
	if c.cfg.Shared != nil {
		se := SharedEntry{Raw: res.Raw, FetchedAt: now, MaxAge: res.MaxAge}
		if err := c.cfg.Shared.Put(ctx, url, se); err != nil {
			c.sharedError(url, fmt.Errorf("put: %w", err))
		}
	}
	return outcome{keys: res.Keys, fetchedAt: now, maxAge: res.MaxAge}
}

// sharedFresh reports whether a shared set may stand in for a fetch: for an
// unknown kid it must be younger than MinInterval (the fleet-wide rate
// limit), otherwise younger than 90% of its refresh interval, the earliest
// point the jittered schedule refreshes. A set from far in the future
// (clock skew beyond MinInterval) is never fresh, so a bad clock cannot
// freeze the fleet's keys.
func (c *Cache) sharedFresh(se SharedEntry, m mode) bool {
	age := c.cfg.Now().Sub(se.FetchedAt)
	if age < -c.cfg.MinInterval {
		return false
	}
	if m == modeUnknownKID {
		return age < c.cfg.MinInterval
	}
	iv := c.interval(se.MaxAge)
	return age < iv-iv/10
}

// applyLocked records out in e, schedules the next refresh and returns the
// key ids added and removed.
func (c *Cache) applyLocked(e *entry, out outcome) (added, removed []string) {
	now := c.cfg.Now()
	if out.fetchErr != nil {
		e.failures++
		e.lastErr = out.fetchErr
		e.nextRefresh = now.Add(c.failBackoff(e.failures))
	} else {
		e.failures, e.lastErr = 0, nil
	}
	if out.keys != nil {
		kids := kidsOf(out.keys)
		added, removed = diff(e.kids, kids)
		e.keys, e.kids = out.keys, kids
		e.fetchedAt, e.maxAge = out.fetchedAt, out.maxAge
	}
	if out.fetchErr == nil {
		iv := c.interval(e.maxAge)
		// Jitter spreads a fleet's refreshes, so the first worker due fetches
		// and shares and the others find its set fresh.
		jitter := time.Duration(rand.Int64N(int64(iv/10) + 1))
		e.nextRefresh = e.fetchedAt.Add(iv - jitter)
	}
	e.nextRefresh = maxTime(e.nextRefresh, e.lastAttempt.Add(c.cfg.MinInterval))
	return added, removed
}

// interval is the refresh interval for a set served with maxAge.
func (c *Cache) interval(maxAge time.Duration) time.Duration {
	if maxAge <= 0 {
		return c.cfg.RefreshInterval
	}
	return min(max(maxAge, c.cfg.MinRefresh), c.cfg.MaxRefresh)
}

// failBackoff is the wait before the schedule retries after failures
// consecutive failures: MinInterval, doubling, at most RefreshInterval.
func (c *Cache) failBackoff(failures int) time.Duration {
	d := c.cfg.MinInterval << min(failures-1, 20)
	return max(min(d, c.cfg.RefreshInterval), c.cfg.MinInterval)
}

func (c *Cache) sharedUsed(url string) {
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.SharedUsed(url)
	}
}

func (c *Cache) sharedError(url string, err error) {
	if c.cfg.OnSharedError != nil {
		c.cfg.OnSharedError(url, err)
	}
}

// Run keeps the schedule until ctx is done: each known URL is refreshed when
// its time comes — its last fetch plus its interval (Cache-Control max-age
// clamped to [MinRefresh, MaxRefresh], else RefreshInterval) less up to 10%
// jitter, or after a failure MinInterval doubling up to RefreshInterval. It
// uses Config.Now for every decision and timers for sleeping. Run returns
// once ctx is done and every fetch it or a caller started has finished (each
// is bounded by FetchTimeout). Call it once, from one goroutine.
func (c *Cache) Run(ctx context.Context) {
	c.mu.Lock()
	c.draining = false
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.draining = true
		c.mu.Unlock()
		c.active.Wait()
	}()
	for {
		next := c.startDue(ctx)
		var t *time.Timer
		var timer <-chan time.Time
		if !next.IsZero() {
			t = time.NewTimer(next.Sub(c.cfg.Now()))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-c.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// startDue starts the refresh of every URL whose time has come and returns
// the earliest refresh time of the others (zero when none waits).
func (c *Cache) startDue(ctx context.Context) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	var next time.Time
	for url, e := range c.entries {
		if e.inflight != nil {
			continue
		}
		if !e.nextRefresh.After(now) {
			c.startLocked(ctx, url, e, modeSchedule, false)
			continue
		}
		if next.IsZero() || e.nextRefresh.Before(next) {
			next = e.nextRefresh
		}
	}
	return next
}

func kidsOf(keys []domain.PublicKey) []string {
	kids := make([]string, 0, len(keys))
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	return slices.Compact(kids)
}

// diff returns the sorted ids in next but not prev, and in prev but not next.
func diff(prev, next []string) (added, removed []string) {
	for _, k := range next {
		if _, found := slices.BinarySearch(prev, k); !found {
			added = append(added, k)
		}
	}
	for _, k := range prev {
		if _, found := slices.BinarySearch(next, k); !found {
			removed = append(removed, k)
		}
	}
	return added, removed
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
