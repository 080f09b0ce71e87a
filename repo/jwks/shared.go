package jwks

import (
	"context"
	"slices"
	"sync"
	"time"
)

// SharedEntry is one URL's last good JWK Set as stored for the fleet.
type SharedEntry struct {
	// Raw is the body as the issuer served it; readers parse it again.
	Raw []byte
	// FetchedAt is when the fetching worker received it.
	FetchedAt time.Time
	// MaxAge is the Cache-Control max-age it came with (0: none).
	MaxAge time.Duration
}

// SharedStore lets several workers share fetched key sets so that the issuer
// sees about one fetch per refresh interval for the whole fleet. Get reports
// ok=false when the URL has no entry. Implementations must be safe for
// concurrent use; a Put may overwrite a newer entry (last writer wins is
// fine: readers only compare FetchedAt).
type SharedStore interface {
	Get(ctx context.Context, url string) (SharedEntry, bool, error)
	Put(ctx context.Context, url string, e SharedEntry) error
}

// MemoryShared is an in-process SharedStore, for tests and single-process
// setups with several caches.
type MemoryShared struct {
	mu      sync.Mutex
	entries map[string]SharedEntry
}

// NewMemoryShared returns an empty MemoryShared.
func NewMemoryShared() *MemoryShared {
	return &MemoryShared{entries: map[string]SharedEntry{}}
}

// Get returns a copy of url's entry.
func (m *MemoryShared) Get(_ context.Context, url string) (SharedEntry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[url]
	e.Raw = slices.Clone(e.Raw)
	return e, ok, nil
}

// Put stores a copy of e for url.
func (m *MemoryShared) Put(_ context.Context, url string, e SharedEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.Raw = slices.Clone(e.Raw)
	m.entries[url] = e
	return nil
}
