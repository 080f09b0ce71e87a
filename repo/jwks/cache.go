// Package jwks fetches, checks and caches the JSON Web Key Sets that trusted
// token profiles name by jwks_url. Fetching is SSRF-guarded (guard.go), sets
// are parsed strictly (parse.go), and Cache keeps each URL's last good keys
// in memory, refreshes them on a schedule, refetches once per unknown kid
// with a per-URL rate limit, and can share fetched sets across a fleet of
// workers through a SharedStore.
package jwks

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Defaults of Config.
const (
	DefaultRefreshInterval = 15 * time.Minute
	DefaultMinRefresh      = time.Minute
	DefaultMaxRefresh      = 24 * time.Hour
	DefaultMinInterval     = 30 * time.Second
	DefaultFetchTimeout    = 10 * time.Second

	// A URL with no keys at all is retried by callers (Keys, WaitKeys) after
	// emptyRetryMin, doubling up to emptyRetryMax, however many callers wait.
	emptyRetryMin = 200 * time.Millisecond
	emptyRetryMax = time.Second
)

// KeyFetcher fetches and parses one JWK Set; *Fetcher is the real one.
type KeyFetcher interface {
	Fetch(ctx context.Context, url string) (FetchResult, error)
}

// Recorder is told about fetches; jwks/jwksprom implements it with
// Prometheus metrics. Its methods must be safe for concurrent use and quick.
type Recorder interface {
	// Fetched reports one fetch from the issuer; err is nil on success.
	Fetched(url string, err error)
	// SharedUsed reports that a SharedStore entry made a fetch unnecessary.
	SharedUsed(url string)
}

// Config configures a Cache. Zero durations take the defaults above.
type Config struct {
	// Fetcher fetches one set (required).
	Fetcher KeyFetcher
	// Now is the clock for every decision (default time.Now).
	Now func() time.Time
	// RefreshInterval is the schedule when the issuer sends no max-age.
	RefreshInterval time.Duration
	// MinRefresh and MaxRefresh clamp a Cache-Control max-age.
	MinRefresh, MaxRefresh time.Duration
	// MinInterval is the least time between two fetch attempts of one URL
	// caused by unknown kids (and the first retry delay after a failure).
	MinInterval time.Duration
	// FetchTimeout bounds one fetch whatever the Fetcher does.
	FetchTimeout time.Duration
	// Shared, when set, is consulted before fetching and filled after.
	Shared SharedStore
	// OnChange is called after a refresh changed the set of key ids, with
	// sorted added and removed ids (the first fetch adds all). Like
	// OnFailure it runs on the fetching goroutine after the callers waiting
	// for that fetch were released, and Run waits for it on shutdown.
	OnChange func(url string, added, removed []string)
	// OnFailure is called after each failed fetch; the last good keys stay
	// in use.
	OnFailure func(url string, err error)
	// OnSharedError is called when the SharedStore fails or holds a set
	// that does not parse; the cache then fetches itself.
	OnSharedError func(url string, err error)
	// Metrics, when set, is told of every fetch.
	Metrics Recorder
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RefreshInterval, DefaultRefreshInterval)
	def(&c.MinRefresh, DefaultMinRefresh)
	def(&c.MaxRefresh, DefaultMaxRefresh)
	def(&c.MinInterval, DefaultMinInterval)
	def(&c.FetchTimeout, DefaultFetchTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of c (after defaults) joined in one error.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Fetcher == nil {
		errs = append(errs, errors.New("jwks: Config.Fetcher is required"))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"RefreshInterval", c.RefreshInterval}, {"MinRefresh", c.MinRefresh}, {"MaxRefresh", c.MaxRefresh},
		{"MinInterval", c.MinInterval}, {"FetchTimeout", c.FetchTimeout},
	} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("jwks: Config.%s is negative", d.name))
		}
	}
	if c.MinRefresh > c.MaxRefresh {
		errs = append(errs, fmt.Errorf("jwks: Config.MinRefresh %s exceeds MaxRefresh %s", c.MinRefresh, c.MaxRefresh))
	}
	return errors.Join(errs...)
}

// Cache holds the last good keys of each JWKS URL. All methods are safe for
// concurrent use; no I/O ever happens under its lock.
type Cache struct {
	cfg  Config
	wake chan struct{}

	mu       sync.Mutex
	entries  map[string]*entry
	active   sync.WaitGroup // fetch goroutines, joined when Run returns
	draining bool           // Run has returned: stop tracking in active
}

// entry is the state of one URL, guarded by Cache.mu.
type entry struct {
	keys        []domain.PublicKey // never mutated, only replaced
	kids        []string           // sorted, unique
	fetchedAt   time.Time          // when keys were fetched, by anyone
	maxAge      time.Duration
	lastAttempt time.Time // start of the last fetch or shared check
	nextRefresh time.Time
	failures    int // consecutive failed fetches
	lastErr     error
	inflight    *call
	// notified is closed once the callbacks of the latest refresh have
	// run: each refresh waits for its predecessor's before running its
	// own, so OnChange and OnFailure see a URL's refreshes in order.
	notified chan struct{}
}

// call is one fetch in flight that any number of callers may wait for.
type call struct {
	done chan struct{}
	err  error // set before done is closed
}

// NewCache returns a Cache for cfg with defaults applied. It panics when
// cfg.Validate fails: a bad config is a programming error of the caller.
func NewCache(cfg Config) *Cache {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Cache{
		cfg:     cfg.withDefaults(),
		wake:    make(chan struct{}, 1),
		entries: map[string]*entry{},
	}
}

// Keys returns url's current keys from memory; the hot path does no I/O.
// When the URL has no keys yet it fetches them (sharing a fetch in flight)
// unless a fetch failed moments ago (200ms, backing off to 1s), and answers
// an error wrapping domain.ErrJWKSUnavailable when there are still none.
// Keys registers url for the schedule Run keeps. The slice is shared:
// callers must not modify it.
func (c *Cache) Keys(ctx context.Context, url string) ([]domain.PublicKey, error) {
	keys, _, err := c.tryEmpty(ctx, url)
	return keys, err
}

// WaitKeys is Keys for a URL that may have no keys yet: it keeps retrying,
// 200ms apart backing off to 1s (the pace is per URL, however many callers
// wait), until keys arrive or maxWait (or ctx) runs out, and then answers an
// error wrapping domain.ErrJWKSUnavailable.
func (c *Cache) WaitKeys(ctx context.Context, url string, maxWait time.Duration) ([]domain.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	deadline := c.cfg.Now().Add(maxWait)
	for {
		keys, retryAt, err := c.tryEmpty(ctx, url)
		if err == nil {
			return keys, nil
		}
		now := c.cfg.Now()
		if ctx.Err() != nil || !now.Before(deadline) {
			return nil, err
		}
		wait := deadline.Sub(now)
		if retryAt.Before(deadline) {
			wait = retryAt.Sub(now)
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// tryEmpty returns url's keys, fetching when it has none and the empty-URL
// backoff allows; on failure retryAt is when the next attempt may start.
func (c *Cache) tryEmpty(ctx context.Context, url string) (keys []domain.PublicKey, retryAt time.Time, err error) {
	c.mu.Lock()
	e := c.entryLocked(url)
	if len(e.keys) > 0 {
		keys = e.keys
		c.mu.Unlock()
		return keys, time.Time{}, nil
	}
	cl := e.inflight
	if cl == nil {
		if at := e.lastAttempt.Add(emptyBackoff(e.failures)); e.failures > 0 && c.cfg.Now().Before(at) {
			err = e.lastErr
			c.mu.Unlock()
			return nil, at, unavailable(url, err)
		}
		cl = c.startLocked(ctx, url, e, modeEnsure, true)
	}
	c.mu.Unlock()
	err = cl.wait(ctx)
	c.mu.Lock()
	keys, retryAt = e.keys, e.lastAttempt.Add(emptyBackoff(e.failures))
	c.mu.Unlock()
	if len(keys) > 0 {
		return keys, time.Time{}, nil
	}
	return nil, retryAt, unavailable(url, err)
}

// RefreshUnknownKID is called when a token names a kid that Keys did not
// hold. It fetches url again, unless the last attempt started less than
// MinInterval ago (then it returns the current keys without I/O, so a flood
// of made-up kids costs the issuer one fetch per interval); concurrent
// callers share one fetch. When that fetch fails it returns the last good
// keys together with an error wrapping domain.ErrJWKSUnavailable, so the
// caller can tell "kid unknown" (401) from "could not check" (503).
func (c *Cache) RefreshUnknownKID(ctx context.Context, url string) ([]domain.PublicKey, error) {
	c.mu.Lock()
	e := c.entryLocked(url)
	cl := e.inflight
	if cl == nil {
		if !e.lastAttempt.IsZero() && c.cfg.Now().Sub(e.lastAttempt) < c.cfg.MinInterval {
			keys, err := e.keys, e.lastErr
			c.mu.Unlock()
			if len(keys) == 0 || err != nil {
				// The last attempt failed: the kid cannot be confirmed
				// either way, so "could not check", with the last good
				// keys, for as long as the rate limit holds.
				return keys, unavailable(url, err)
			}
			return keys, nil
		}
		cl = c.startLocked(ctx, url, e, modeUnknownKID, true)
	}
	c.mu.Unlock()
	err := cl.wait(ctx)
	c.mu.Lock()
	keys := e.keys
	c.mu.Unlock()
	if err != nil || len(keys) == 0 {
		return keys, unavailable(url, err)
	}
	return keys, nil
}

// Ensure fetches url now (a profile naming it was created or changed),
// joining a fetch already in flight, and registers it for the schedule. A
// SharedStore entry fresher than the URL's refresh interval is used instead
// of fetching. The error wraps domain.ErrJWKSUnavailable; the last good
// keys, if any, stay in use.
func (c *Cache) Ensure(ctx context.Context, url string) error {
	c.mu.Lock()
	e := c.entryLocked(url)
	cl := e.inflight
	if cl == nil {
		cl = c.startLocked(ctx, url, e, modeEnsure, true)
	}
	c.mu.Unlock()
	if err := cl.wait(ctx); err != nil {
		return unavailable(url, err)
	}
	return nil
}

// Forget drops url and its keys (no profile names it any more). A fetch in
// flight for it finishes but is discarded.
func (c *Cache) Forget(url string) {
	c.mu.Lock()
	delete(c.entries, url)
	c.mu.Unlock()
	c.signal()
}

// Status describes one URL, for metrics, health and tests.
type Status struct {
	URL         string
	KIDs        []string      // sorted key ids in use
	FetchedAt   time.Time     // when the keys in use were fetched; zero: none yet
	Age         time.Duration // Now - FetchedAt; 0 when there are no keys
	NextRefresh time.Time     // when the schedule refreshes next
	Failures    int           // consecutive failed fetches
	LastError   error         // of the last failed fetch, nil after a success
}

// Status returns url's status; ok is false for an unknown URL.
func (c *Cache) Status(url string) (s Status, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[url]
	if !ok {
		return Status{}, false
	}
	return c.statusLocked(url, e), true
}

// Statuses returns the status of every known URL, sorted by URL.
func (c *Cache) Statuses() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Status, 0, len(c.entries))
	for url, e := range c.entries {
		out = append(out, c.statusLocked(url, e))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.URL, b.URL) })
	return out
}

func (c *Cache) statusLocked(url string, e *entry) Status {
	s := Status{URL: url, KIDs: slices.Clone(e.kids), FetchedAt: e.fetchedAt,
		NextRefresh: e.nextRefresh, Failures: e.failures, LastError: e.lastErr}
	if len(e.keys) > 0 {
		s.Age = max(c.cfg.Now().Sub(e.fetchedAt), 0)
	}
	return s
}

// entryLocked returns url's entry, creating it (and waking Run) if new.
func (c *Cache) entryLocked(url string) *entry {
	e, ok := c.entries[url]
	if !ok {
		e = &entry{}
		c.entries[url] = e
		c.signal()
	}
	return e
}

// signal wakes Run without blocking.
func (c *Cache) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// wait blocks until the call is done or ctx ends.
func (cl *call) wait(ctx context.Context) error {
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unavailable wraps the cause of a URL having no (fresh) keys.
func unavailable(url string, cause error) error {
	if cause == nil {
		cause = errors.New("no keys")
	}
	return domain.ErrJWKSUnavailable.Wrap(fmt.Errorf("jwks %s: %w", Redact(url), cause), "")
}

// Redact returns rawURL with any password replaced by "xxxxx", for logs,
// errors and metric labels. A URL that does not parse is replaced whole.
func Redact(rawURL string) string {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// emptyBackoff is the pause before retrying a URL with no keys after
// failures consecutive failures.
func emptyBackoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	return min(emptyRetryMin<<min(failures-1, 10), emptyRetryMax)
}
