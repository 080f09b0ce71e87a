package mongostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
)

// openStoreWith opens a store with options on the test FerretDB, in a
// database of its own.
func openStoreWith(t testing.TB, opts ...mongostore.Option) (*mongostore.Store, string) {
	t.Helper()
	openStore(t) // starts the server once
	ctx := context.Background()
	name := fmt.Sprintf("b%d", time.Now().UnixNano())
	s, err := mongostore.Open(ctx, ferret.URI(), name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	return s, name
}

// rawClient is a driver client of the test FerretDB, to look at what the
// store wrote (or to write what an earlier version would have).
func rawClient(t testing.TB) *mongo.Client {
	t.Helper()
	return rawClientAt(t, ferret.URI())
}

// rawClientAt is a driver client of the server at uri.
func rawClientAt(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// TestFerretInsertManyUnorderedReportsEachDocument pins down what the
// batching rests on, on the server the tests run on (FerretDB 1.24): an
// unordered insertMany inserts every document it can and reports each
// refused one as a write error carrying that document's index, a duplicate
// key as code 11000, whether the duplicate is stored already or earlier in
// the same batch (the first one wins).
func TestFerretInsertManyUnorderedReportsEachDocument(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	c := rawClient(t)
	coll := c.Database(fmt.Sprintf("raw%d", time.Now().UnixNano())).Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "stored"}, {Key: "n", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	docs := []any{
		bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: "stored"}, {Key: "n", Value: 2}}, // already stored
		bson.D{{Key: "_id", Value: "b"}, {Key: "n", Value: 3}},
		bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 4}},       // duplicate of index 0
		bson.D{{Key: "_id", Value: bson.A{1}}, {Key: "n", Value: 5}}, // an array _id: refused
		bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: 6}},
	}
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		t.Fatalf("want a BulkWriteException, got %T %v", err, err)
	}
	got := map[int]int{}
	for _, we := range bwe.WriteErrors {
		got[we.Index] = we.Code
	}
	if len(got) != 3 || got[1] != 11000 || got[3] != 11000 || got[4] == 0 || got[4] == 11000 {
		t.Fatalf("write errors by index: %v (want 1 and 3 duplicate keys, 4 another error)", got)
	}
	if bwe.WriteConcernError != nil {
		t.Fatalf("write concern error: %v", bwe.WriteConcernError)
	}
	want := map[string]int32{"stored": 0, "a": 1, "b": 3, "c": 6}
	cur, err := coll.Find(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []struct {
		ID any   `bson:"_id"`
		N  int32 `bson:"n"`
	}
	if err := cur.All(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(want) {
		t.Fatalf("stored %+v, want %v", stored, want)
	}
	for _, d := range stored {
		if id, _ := d.ID.(string); want[id] != d.N {
			t.Fatalf("stored %+v, want %v", stored, want)
		}
	}
}

// TestBatchedInsertsOneWinnerPerKey is the batching contract: many callers
// at once, some on the same keys; every caller learns whether its own
// insert won, exactly one wins per key, and a loser's read-back names the
// winner. Replay claims, outcomes, session revisions and email claims all
// go through the batches.
func TestBatchedInsertsOneWinnerPerKey(t *testing.T) {
	for _, o := range []mongostore.BatchOptions{
		mongostore.DefaultBatch,
		{MaxDocs: 8, Delay: 0},
	} {
		t.Run(fmt.Sprintf("max%d-delay%v", o.MaxDocs, o.Delay), func(t *testing.T) {
			s, _ := openStoreWith(t, mongostore.WithBatching(o))
			ctx := context.Background()
			const callers, keys = 96, 48
			now := time.Now()
			type answer struct {
				key      int
				caller   string
				inserted bool
				winner   string
			}
			kinds := map[string]func(key int, caller string) (bool, string, error){
				"claim": func(key int, caller string) (bool, string, error) {
					holder, ins, err := s.Claim(ctx, "p", fmt.Sprint("jti-", key), caller, now.Add(time.Hour), now)
					return ins, holder, err
				},
				"record": func(key int, caller string) (bool, string, error) {
					o := domain.Outcome{Key: fmt.Sprint("attest:", key), Reply: json.RawMessage(fmt.Sprintf(`{"by":%q}`, caller)), CreatedAt: now}
					got, ins, err := s.Record(ctx, o)
					var r struct{ By string }
					_ = json.Unmarshal(got.Reply, &r)
					return ins, r.By, err
				},
				"revision": func(key int, caller string) (bool, string, error) {
					_, by, err := s.InsertRevision(ctx, session(fmt.Sprint("s-", key), 1, now.Add(time.Hour)), caller)
					if errors.Is(err, domain.ErrConflict) {
						return false, by, nil
					}
					return err == nil, by, err
				},
				"email": func(key int, caller string) (bool, string, error) {
					owner, ins, err := s.ClaimEmail(ctx, fmt.Sprintf("k%d@x.com", key), caller)
					return ins, owner, err
				},
			}
			for kind, do := range kinds {
				var wg sync.WaitGroup
				answers := make([]answer, callers)
				start := make(chan struct{})
				for i := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						key, caller := i%keys, fmt.Sprint("r", i)
						ins, winner, err := do(key, caller)
						if err != nil {
							t.Errorf("%s %d: %v", kind, i, err)
						}
						answers[i] = answer{key: key, caller: caller, inserted: ins, winner: winner}
					}()
				}
				close(start)
				wg.Wait()
				winners := map[int]string{}
				for _, a := range answers {
					if a.inserted {
						if w, ok := winners[a.key]; ok {
							t.Fatalf("%s: key %d won by %s and %s", kind, a.key, w, a.caller)
						}
						winners[a.key] = a.caller
					}
				}
				if len(winners) != keys {
					t.Fatalf("%s: %d keys have a winner, want %d", kind, len(winners), keys)
				}
				for _, a := range answers {
					if a.winner != winners[a.key] {
						t.Fatalf("%s: caller %s of key %d was told %q won; %q did", kind, a.caller, a.key, a.winner, winners[a.key])
					}
				}
			}
			if st := s.BatchStats(); st.Documents < 4*callers || st.Batches > st.Documents {
				t.Fatalf("batch stats %+v: every insert goes through the batches", st)
			}
		})
	}
}

// TestBatchesFlushBySize: with a delay that never ends, batches go out
// exactly when full, duplicates within one batch included.
func TestBatchesFlushBySize(t *testing.T) {
	s, _ := openStoreWith(t, mongostore.WithBatching(mongostore.BatchOptions{MaxDocs: 25, Delay: time.Hour}))
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[string]int{}
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := fmt.Sprint("t", i%40)
			_, ins, err := s.Claim(ctx, "p", tok, fmt.Sprint("r", i), now.Add(time.Hour), now)
			if err != nil {
				t.Error(err)
			}
			if ins {
				mu.Lock()
				wins[tok]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(wins) != 40 {
		t.Fatalf("%d tokens claimed, want 40", len(wins))
	}
	for tok, n := range wins {
		if n != 1 {
			t.Fatalf("%s claimed %d times", tok, n)
		}
	}
	// 100 first inserts in 4 full batches, then the 60 losers' read-backs
	// insert nothing more.
	if st := s.BatchStats(); st.Batches != 4 || st.Documents != 100 {
		t.Fatalf("batch stats %+v, want 4 batches of 25", st)
	}
}

// TestBatchCancelledCallerLeavesTheOthers: a caller whose context ends
// while its document waits is left out of the batch and gets its context's
// error; the others' inserts go on.
func TestBatchCancelledCallerLeavesTheOthers(t *testing.T) {
	s, name := openStoreWith(t, mongostore.WithBatching(mongostore.BatchOptions{MaxDocs: 4, Delay: time.Hour}))
	ctx := context.Background()
	now := time.Now()
	type res struct {
		id  string
		ins bool
		err error
	}
	results := make(chan res, 4)
	claim := func(ctx context.Context, id string) {
		_, ins, err := s.Claim(ctx, "p", id, "r-"+id, now.Add(time.Hour), now)
		results <- res{id, ins, err}
	}
	go claim(ctx, "a")
	go claim(ctx, "b")
	cctx, cancel := context.WithCancel(ctx)
	go claim(cctx, "cancelled")
	time.Sleep(50 * time.Millisecond) // let the three queue (not a timed assertion: any order works)
	cancel()
	if r := <-results; r.id != "cancelled" || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("the cancelled caller must return at once with its context's error: %+v", r)
	}
	go claim(ctx, "d") // the fourth document fills the batch
	for range 3 {
		if r := <-results; r.err != nil || !r.ins {
			t.Fatalf("a caller was failed by another's cancellation: %+v", r)
		}
	}
	// The cancelled caller's claim was not written: another request takes it.
	s2, err := mongostore.Open(ctx, ferret.URI(), name, mongostore.WithBatching(mongostore.BatchOptions{MaxDocs: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	if holder, ins, err := s2.Claim(ctx, "p", "cancelled", "r-later", now.Add(time.Hour), now); err != nil || !ins || holder != "r-later" {
		t.Fatalf("the cancelled caller's document was written: %v %v %s", err, ins, holder)
	}
	if holder, ins, _ := s2.Claim(ctx, "p", "a", "r-later", now.Add(time.Hour), now); ins || holder != "r-a" {
		t.Fatalf("a's claim is not stored: %v %s", ins, holder)
	}
}

// TestCloseSendsQueuedInserts: Close sends what waits in a batch and its
// callers learn their documents are stored; inserts after Close fail.
func TestCloseSendsQueuedInserts(t *testing.T) {
	s, name := openStoreWith(t, mongostore.WithBatching(mongostore.BatchOptions{MaxDocs: 64, Delay: time.Hour}))
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = s.Claim(ctx, "p", fmt.Sprint("t", i), "r", now.Add(time.Hour), now)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them queue; any that did not get "store closed"
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2, err := mongostore.Open(ctx, ferret.URI(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	for i, err := range errs {
		holder, ins, cerr := s2.Claim(ctx, "p", fmt.Sprint("t", i), "other", now.Add(time.Hour), now)
		if cerr != nil {
			t.Fatal(cerr)
		}
		if stored := !ins && holder == "r"; stored != (err == nil) {
			t.Fatalf("caller %d was told %v, but stored is %v", i, err, stored)
		}
	}
	if _, _, err := s.Claim(ctx, "p", "late", "r", now.Add(time.Hour), now); err == nil {
		t.Fatal("an insert after Close succeeded")
	}
}

// TestPublicationMarkerInOutcomes: a publication marker is a document of
// the outcomes collection (so it joins the outcomes' grouped inserts), Get
// still reads markers written into outcomes_published before, and no
// outcome may take a marker's _id.
func TestPublicationMarkerInOutcomes(t *testing.T) {
	s, _ := openStoreWith(t)
	ctx := context.Background()
	outcomes := mongostore.RawCollection(t, s, "outcomes")
	legacy := mongostore.RawCollection(t, s, "outcomes_published")
	ev, _ := domain.NewEvent("e1", domain.EventAttestVerified, "s", time.Now(), map[string]string{"a": "b"})
	for _, k := range []string{"attest:new", "attest:legacy", "attest:unpublished"} {
		if _, _, err := s.Record(ctx, domain.Outcome{Key: k, StatusCode: 200, Reply: json.RawMessage(`{}`), Event: ev, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkPublished(ctx, domain.Outcome{Key: "attest:new", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPublished(ctx, domain.Outcome{Key: "attest:new", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("marking twice: %v", err)
	}
	var mark bson.M
	if err := outcomes.FindOne(ctx, bson.M{"_id": "published/attest:new"}).Decode(&mark); err != nil {
		t.Fatalf("marker in outcomes: %v", err)
	}
	if n, err := legacy.CountDocuments(ctx, bson.M{}); err != nil || n != 0 {
		t.Fatalf("outcomes_published holds %d documents (%v); want none written", n, err)
	}
	// A marker of the earlier layout.
	if _, err := legacy.InsertOne(ctx, bson.M{"_id": "attest:legacy", "created_at": time.Now()}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"attest:new": true, "attest:legacy": true, "attest:unpublished": false} {
		o, ok, err := s.Get(ctx, k)
		if err != nil || !ok || o.Published != want {
			t.Fatalf("Get(%s): published %v, found %v, err %v; want published %v", k, o.Published, ok, err, want)
		}
	}
	// The marker is not an outcome.
	if _, ok, err := s.Get(ctx, "published/attest:new"); err == nil && ok {
		t.Fatal("a marker read as an outcome")
	}
	if _, _, err := s.Record(ctx, domain.Outcome{Key: "published/attest:unpublished", StatusCode: 200, Reply: json.RawMessage(`{}`), Event: ev, CreatedAt: time.Now()}); err == nil {
		t.Fatal("an outcome took a marker's _id")
	}
	if o, _, _ := s.Get(ctx, "attest:unpublished"); o.Published {
		t.Fatal("attest:unpublished published by an outcome under its marker's _id")
	}
	// The sweeper removes markers with their outcomes.
	if _, err := s.Sweep(ctx, time.Now().Add(time.Hour), time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := outcomes.CountDocuments(ctx, bson.M{}); err != nil || n != 0 {
		t.Fatalf("after the sweep outcomes holds %d documents (%v)", n, err)
	}
}
