package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tat-worker/attest/domain"
)

// What the worker itself needs of the store, one small interface for each
// use (Deps). The handlers' ports are not here: the composition root hands
// the store to the handlers it builds.

// StoreSetup prepares the store at each start.
type StoreSetup interface {
	// Setup makes the collections and indexes.
	Setup(ctx context.Context) error
	// ExpiresByTTL reports whether the store expires documents itself
	// (the sweeper runs either way).
	ExpiresByTTL() bool
}

// storeDescriber is a store that can say where it keeps its collections
// (logged once at start; mongostore's layout).
type storeDescriber interface {
	Describe() string
}

// SnapshotLoader reads what the store holds, for the feed's start. Users
// and sessions are handed over one at a time, so the snapshot is never
// held whole beside the view it fills.
type SnapshotLoader interface {
	LoadProfiles(ctx context.Context) ([]domain.ProfileRecord, error)
	EachUser(ctx context.Context, f func(domain.UserRecord) error) error
	// EachSession gives every stored revision of every session, in no
	// order: the caller keeps each session's latest.
	EachSession(ctx context.Context, f func(domain.SessionState) error) error
}

// SecretStore keeps the fleet's key records sealed under the master key.
// A secret sealed under another key fails with domain.ErrWrongMasterKey.
type SecretStore interface {
	LoadSecrets(ctx context.Context, prefix string, master []byte) ([]domain.StoredSecret, error)
	LoadOrCreateSecret(ctx context.Context, name string, master, fresh []byte) ([]byte, error)
	InsertSecret(ctx context.Context, name string, master, fresh []byte) ([]byte, bool, error)
}

// Pinger says whether the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Sweeper deletes what has expired from the store (see the sweep loop).
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time, sessionGrace, keepOutcomes time.Duration) (int64, error)
}

// BatchCounter counts the grouped insert commands and their documents.
type BatchCounter interface {
	BatchCounts() (batches, documents int64)
}

// check reports what a worker cannot run without.
func (d Deps) check() error {
	var missing []error
	for _, c := range []struct {
		name string
		nil  bool
	}{
		{"NC (a NATS connection)", d.NC == nil}, {"Handlers", d.Handlers == nil},
		{"Setup", d.Setup == nil}, {"Snapshots", d.Snapshots == nil}, {"Secrets", d.Secrets == nil},
		{"Pinger", d.Pinger == nil}, {"Sweeper", d.Sweeper == nil}, {"Batches", d.Batches == nil},
	} {
		if c.nil {
			missing = append(missing, fmt.Errorf("worker needs Deps.%s", c.name))
		}
	}
	if len(d.MasterKey) != 32 {
		missing = append(missing, errors.New("worker needs a 32-byte master key"))
	}
	return errors.Join(missing...)
}
