package mongostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker/embedded"
)

func layoutOutcome(key string) domain.Outcome {
	ev, _ := domain.NewEvent("e-"+key, domain.EventAttestVerified, "s", time.Now(), map[string]string{"a": "b"})
	return domain.Outcome{Key: key, StatusCode: 200, Reply: json.RawMessage(`{}`), Event: ev, CreatedAt: time.Now()}
}

func openNamed(t *testing.T, name string, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	openStore(t) // starts the server once
	s, err := mongostore.Open(context.Background(), ferret.URI(), name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// TestLayoutPerCollectionOnFerretDB: on a FerretDB store that holds
// nothing yet, each collection is a database of its own (one SQLite file,
// one writer), named <database>-<collection>; the database named at Open
// holds only the layout's record, and a second client of the store decides the same and
// reads what the first wrote.
func TestLayoutPerCollectionOnFerretDB(t *testing.T) {
	s, name := openStoreWith(t)
	ctx := context.Background()
	if l, err := s.Layout(ctx); err != nil || l != mongostore.LayoutPerCollection {
		t.Fatalf("layout %v (%v); want per-collection", l, err)
	}
	if _, _, err := s.Record(ctx, layoutOutcome("attest:a")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Claim(ctx, "p", "jti", "attest:a", time.Now().Add(time.Hour), time.Now()); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t)
	n, err := c.Database(name+"-outcomes").Collection("outcomes").CountDocuments(ctx, bson.M{"_id": "attest:a"})
	if err != nil || n != 1 {
		t.Fatalf("outcome in %s-outcomes: %d (%v)", name, n, err)
	}
	n, err = c.Database(name+"-token_replays").Collection("token_replays").CountDocuments(ctx, bson.M{})
	if err != nil || n != 1 {
		t.Fatalf("claim in %s-token_replays: %d (%v)", name, n, err)
	}
	if names, err := c.Database(name).ListCollectionNames(ctx, bson.D{}); err != nil || !slices.Equal(names, []string{"store_layout"}) {
		t.Fatalf("database %s holds %v (%v); want the layout's record only", name, names, err)
	}
	other := openNamed(t, name)
	if _, ok, err := other.Get(ctx, "attest:a"); err != nil || !ok {
		t.Fatalf("a second client of the store does not find the outcome: %v %v", ok, err)
	}
	if l, _ := other.Layout(ctx); l != mongostore.LayoutPerCollection {
		t.Fatalf("second client decided %v", l)
	}
}

// TestLayoutKeepsAStoreWrittenBefore: a FerretDB store written before the
// layout existed (its collections in the database named at Open) keeps
// that layout, so nothing stored is lost on upgrade.
func TestLayoutKeepsAStoreWrittenBefore(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	name := fmt.Sprintf("legacy%d", time.Now().UnixNano())
	old := openNamed(t, name, mongostore.WithLayout(mongostore.LayoutSingle))
	if _, _, err := old.Record(ctx, layoutOutcome("attest:before")); err != nil {
		t.Fatal(err)
	}
	if n, err := rawClient(t).Database(name).Collection("outcomes").CountDocuments(ctx, bson.M{}); err != nil || n != 1 {
		t.Fatalf("single layout wrote %d outcomes into %s (%v)", n, name, err)
	}
	s := openNamed(t, name)
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Layout(ctx); err != nil || l != mongostore.LayoutSingle {
		t.Fatalf("layout %v (%v); want single, the store's own", l, err)
	}
	if _, ok, err := s.Get(ctx, "attest:before"); err != nil || !ok {
		t.Fatalf("outcome stored before: found %v (%v)", ok, err)
	}
	dbs, err := rawClient(t).ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(dbs, func(d string) bool { return strings.HasPrefix(d, name+"-") }); i >= 0 {
		t.Fatalf("database %s made for a single-layout store", dbs[i])
	}
}

// TestLayoutRefusesAStoreWrittenInBoth: collections in both places mean
// workers that disagreed wrote the store; neither half is the whole
// store, so every operation fails with the reason instead of reading one.
func TestLayoutRefusesAStoreWrittenInBoth(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	name := fmt.Sprintf("both%d", time.Now().UnixNano())
	split := openNamed(t, name, mongostore.WithLayout(mongostore.LayoutPerCollection))
	if _, _, err := split.Record(ctx, layoutOutcome("attest:split")); err != nil {
		t.Fatal(err)
	}
	single := openNamed(t, name, mongostore.WithLayout(mongostore.LayoutSingle))
	if _, _, err := single.ClaimEmail(ctx, "a@example.com", "u1"); err != nil {
		t.Fatal(err)
	}
	s := openNamed(t, name)
	if _, err := s.Layout(ctx); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("layout of a store in both layouts: %v; want refused", err)
	}
	if err := s.Setup(ctx); err == nil {
		t.Fatal("Setup of a store in both layouts succeeded")
	}
	if _, _, err := s.Get(ctx, "attest:split"); err == nil {
		t.Fatal("Get on a store in both layouts succeeded")
	}
	if _, _, err := s.Record(ctx, layoutOutcome("attest:new")); err == nil {
		t.Fatal("Record on a store in both layouts succeeded")
	}
}

// TestLayoutUndecidedUntilTheServerAnswers: a store opened while its
// server is not there fails its operations with the reason and decides
// the layout once the server answers (it is not decided from a failure).
func TestLayoutUndecidedUntilTheServerAnswers(t *testing.T) {
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := mongostore.Open(context.Background(), "mongodb://"+addr+"/", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if l, err := s.Layout(ctx); err == nil {
		t.Fatalf("layout %v decided with no server", l)
	}
	// The batched insert decides the layout in its batch (the server
	// selection timeout, 5 s, is shorter than the batch's).
	if _, _, err := s.Record(ctx, layoutOutcome("attest:x")); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Fatalf("Record with no server: %v; want the layout's error", err)
	}
	// Now a server at that address: the next call decides.
	f, err := embedded.StartFerret(addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	if l, err := s.Layout(ctx); err != nil || l != mongostore.LayoutPerCollection {
		t.Fatalf("layout once the server answers: %v (%v)", l, err)
	}
}
