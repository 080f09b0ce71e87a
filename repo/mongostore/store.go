// Package mongostore keeps profiles, users, sessions, outcomes and replay
// claims in MongoDB (or FerretDB, which speaks its wire protocol). Every
// step that correctness rests on is an insert under a unique key; updates
// are uncontended; lookups are by key and stay off the attest hot path,
// because FerretDB scans the whole collection for each.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/tat-worker/attest/domain"
)

// Collection names.
const (
	collOutcomes  = "outcomes"
	collPublished = "outcomes_published" // publication markers written before they moved into outcomes
	collReplays   = "token_replays"
	collSessions  = "session_revisions"
	collUsers     = "users"
	collEmails    = "email_claims"
	collProfiles  = "profiles"
	collSecrets   = "secrets"
)

// Store is the MongoDB-wire store.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	// TTLIndexes reports whether the server accepted TTL indexes (MongoDB
	// does, FerretDB does not); the sweeper runs either way.
	TTLIndexes bool

	batchOpts        BatchOptions
	batchers         map[string]*batcher // by collection; nil: no batching
	batches, batched atomic.Int64

	// Where the collections live (layout.go): layout as asked, resolved
	// once decided, colls by name once resolved.
	layout   Layout
	resolved Layout
	layoutMu sync.Mutex
	colls    atomic.Pointer[map[string]*mongo.Collection]
}

// batchedCollections are those whose inserts are grouped across callers:
// every insert the attest path makes.
var batchedCollections = []string{collOutcomes, collReplays, collSessions, collUsers, collEmails}

// Open connects to uri and uses database name. Inserts are grouped as
// DefaultBatch says unless WithBatching says otherwise.
func Open(ctx context.Context, uri, name string, opts ...Option) (*Store, error) {
	copts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(10 * time.Second)
	c, err := mongo.Connect(copts)
	if err != nil {
		return nil, fmt.Errorf("connect store: %w", err)
	}
	s := &Store{client: c, db: c.Database(name), batchOpts: DefaultBatch}
	for _, o := range opts {
		o(s)
	}
	if s.batchOpts.MaxDocs > 1 {
		s.batchers = map[string]*batcher{}
		for _, coll := range batchedCollections {
			s.batchers[coll] = newBatcher(func(ctx context.Context) (*mongo.Collection, error) { return s.coll(ctx, coll) },
				s.batchOpts, &s.batches, &s.batched)
		}
	}
	return s, nil
}

// BatchStats returns how many insertMany commands the batchers sent and
// how many documents they carried.
func (s *Store) BatchStats() BatchStats {
	return BatchStats{Batches: s.batches.Load(), Documents: s.batched.Load()}
}

// BatchCounts is BatchStats as two numbers: insertMany commands sent
// and the documents in them.
func (s *Store) BatchCounts() (batches, documents int64) {
	st := s.BatchStats()
	return st.Batches, st.Documents
}

// ExpiresByTTL reports whether the server accepted TTL indexes (see
// TTLIndexes).
func (s *Store) ExpiresByTTL() bool { return s.TTLIndexes }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.client.Ping(ctx, readpref.Primary())
}

// Close sends the inserts already queued, waits for their results, then
// disconnects. Inserts after Close fail.
func (s *Store) Close(ctx context.Context) error {
	for _, b := range s.batchers {
		b.close()
	}
	return s.client.Disconnect(ctx)
}

// Setup creates the indexes. TTL indexes are tried and, where the server
// refuses them (FerretDB), noted in TTLIndexes and left to the sweeper.
func (s *Store) Setup(ctx context.Context) error {
	s.TTLIndexes = true
	// Session revisions get no TTL index: a per-document expiry would
	// delete a shortened latest revision before an older, longer one.
	for _, c := range []string{collReplays} {
		coll, err := s.coll(ctx, c)
		if err != nil {
			return err
		}
		_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(int32(domain.ReplayClaimGrace / time.Second)),
		})
		if err != nil {
			var ce mongo.CommandError
			if errors.As(err, &ce) && (ce.Code == 238 || ce.Name == "NotImplemented") {
				s.TTLIndexes = false
				continue
			}
			return fmt.Errorf("create index on %s: %w", c, err)
		}
	}
	return nil
}

// Sweep deletes what has expired: replay claims past their token's expiry
// by more than domain.ReplayClaimGrace,
// revisions of sessions that ended before cutoff, outcomes older than
// keepOutcomes. MongoDB's TTL indexes do the first two as well.
func (s *Store) Sweep(ctx context.Context, now time.Time, sessionGrace, keepOutcomes time.Duration) (int64, error) {
	total, err := s.sweepSessions(ctx, now.Add(-sessionGrace))
	if err != nil {
		return 0, fmt.Errorf("sweep sessions: %w", err)
	}
	for _, d := range []struct {
		coll   string
		filter bson.M
	}{
		// Kept a grace past expiry: a redelivery judged as of an earlier
		// moment must still find the claims live then.
		{collReplays, bson.M{"expires_at": bson.M{"$lt": now.Add(-domain.ReplayClaimGrace)}}},
		{collOutcomes, bson.M{"created_at": bson.M{"$lt": now.Add(-keepOutcomes)}}},
		{collPublished, bson.M{"created_at": bson.M{"$lt": now.Add(-keepOutcomes)}}},
	} {
		c, err := s.coll(ctx, d.coll)
		if err != nil {
			return total, err
		}
		res, err := c.DeleteMany(ctx, d.filter)
		if err != nil {
			return total, fmt.Errorf("sweep %s: %w", d.coll, err)
		}
		total += res.DeletedCount
	}
	return total, nil
}

// insert inserts doc into the collection named coll, in the collection's
// next batch when inserts are batched; a duplicate key becomes
// domain.ErrConflict.
func (s *Store) insert(ctx context.Context, coll string, doc any) error {
	if b := s.batchers[coll]; b != nil {
		return b.insert(ctx, doc)
	}
	c, err := s.coll(ctx, coll)
	if err != nil {
		return err
	}
	return insert(ctx, c, doc)
}

// insert inserts doc on its own; a duplicate key becomes domain.ErrConflict.
func insert(ctx context.Context, c *mongo.Collection, doc any) error {
	_, err := c.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return errConflict
	}
	return err
}

// findByID decodes the document with _id id into out; found is false
// when there is none.
func findByID(ctx context.Context, c *mongo.Collection, id string, out any) (bool, error) {
	err := c.FindOne(ctx, bson.M{"_id": id}).Decode(out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}
