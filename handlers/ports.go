// Package handlers holds the use cases: attest, profile change, user change,
// session authenticate and revoke. Each declares the small interfaces it
// needs; repo satisfies them without importing this package's callers.
package handlers

import (
	"context"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Outcome and ErrConflict live in domain so that repo can satisfy these
// interfaces without importing handlers.
type Outcome = domain.Outcome

// ErrConflict is what stores return when an insert meets an existing key.
var ErrConflict = domain.ErrConflict

// OutcomeStore keeps outcomes; Record is an insert under a unique key.
type OutcomeStore interface {
	// Record inserts o. When an outcome is already stored under o.Key it
	// returns that one and false: the first outcome wins.
	Record(ctx context.Context, o Outcome) (Outcome, bool, error)
	// Get returns the outcome stored under key, if any.
	Get(ctx context.Context, key string) (Outcome, bool, error)
	// MarkPublished notes that o's event reached the events stream. The
	// note lives as long as o (it is swept with o, by o.CreatedAt).
	MarkPublished(ctx context.Context, o Outcome) error
}

// Publisher publishes an event to the events stream, with its id as the
// Nats-Msg-Id, and returns once the stream has stored it.
type Publisher interface {
	PublishEvent(ctx context.Context, e domain.Event) error
}

// ReplayStore remembers accepted token ids.
type ReplayStore interface {
	// Claim inserts (profileID, tokenID) held by requestID until expires,
	// under a unique key. It returns the request id that holds the claim:
	// requestID itself when this call (or an earlier attempt of the same
	// request) made it, and whether this call inserted it. An expired claim
	// is replaced.
	Claim(ctx context.Context, profileID, tokenID, requestID string, expires, now time.Time) (holder string, inserted bool, err error)
}

// SessionStore keeps session revisions: every change inserts a new revision
// under (session id, revision), so two writers can never both win.
type SessionStore interface {
	// InsertRevision stores st made by requestID. On ErrConflict it returns
	// the revision already stored, and the request that made it.
	InsertRevision(ctx context.Context, st domain.SessionState, requestID string) (stored domain.SessionState, storedBy string, err error)
}

// UserStore keeps users and the email claims that make an address belong
// to one user at most.
type UserStore interface {
	// ClaimEmail inserts normalized email -> userID. It returns the owner
	// and whether this call inserted the claim.
	ClaimEmail(ctx context.Context, email, userID string) (owner string, inserted bool, err error)
	// ReleaseEmail deletes the claim if userID holds it.
	ReleaseEmail(ctx context.Context, email, userID string) error
	// ReleaseOthers deletes every claim userID holds on an address not in
	// keep.
	ReleaseOthers(ctx context.Context, userID string, keep []string) error
	// PutUser writes the user's current state (uncontended: user commands
	// are applied one at a time, and JIT users are inserted once).
	PutUser(ctx context.Context, u domain.User, deleted bool) error
	// InsertUser inserts a new user; an existing one is left as it is.
	InsertUser(ctx context.Context, u domain.User) error
}

// ProfileStore keeps profiles.
type ProfileStore interface {
	PutProfile(ctx context.Context, p domain.Profile, deleted bool) error
}

// KeySource gives the keys that verify a JWKS profile's tokens.
type KeySource interface {
	// Keys returns the current keys of url, waiting briefly for a first
	// fetch; domain.ErrJWKSUnavailable when none can be had.
	Keys(ctx context.Context, url string) ([]domain.PublicKey, error)
	// RefreshUnknownKID refetches once for an unknown kid, rate-limited.
	RefreshUnknownKID(ctx context.Context, url string) ([]domain.PublicKey, error)
	// Ensure fetches now (a profile was created or changed).
	Ensure(ctx context.Context, url string) error
}

// Barrier waits until this worker's in-memory view has applied every event
// stored so far, so a change made by another worker is visible.
type Barrier interface {
	CatchUp(ctx context.Context) error
}
