package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// startFerretEvery starts a Ferret whose indexer looks every interval.
func startFerretEvery(t testing.TB, interval time.Duration) (*Ferret, *mongo.Client, string) {
	t.Helper()
	old := idIndexInterval
	idIndexInterval = interval
	dir := t.TempDir()
	fe, err := StartFerret("127.0.0.1:0", dir)
	idIndexInterval = old
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fe.Stop)
	c, err := mongo.Connect(options.Client().ApplyURI(fe.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return fe, c, dir
}

// plan returns FerretDB's SQLite query plan of a find by _id.
func plan(t *testing.T, c *mongo.Collection, id string) string {
	t.Helper()
	// A connection notices a schema change when it next reads; EXPLAIN
	// QUERY PLAN does not read, so a find goes first.
	_, _ = findN(t, c, id)
	var res struct {
		FilterPushdown bool `bson:"filterPushdown"`
		QueryPlanner   struct {
			Plan []string `bson:"Plan"`
		} `bson:"queryPlanner"`
	}
	cmd := bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: c.Name()}, {Key: "filter", Value: bson.M{"_id": id}}, {Key: "limit", Value: 1}}}}
	if err := c.Database().RunCommand(context.Background(), cmd).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if !res.FilterPushdown {
		t.Fatalf("find by _id was not pushed down to SQLite: %+v", res)
	}
	return strings.Join(res.QueryPlanner.Plan, "; ")
}

// listIndexes returns what FerretDB's listIndexes answers for c.
func listIndexes(t *testing.T, c *mongo.Collection) []bson.M {
	t.Helper()
	ctx := context.Background()
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var idx []bson.M
	if err := cur.All(ctx, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func insertN(t *testing.T, c *mongo.Collection, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.M{"_id": fmt.Sprintf("k%04d", i), "n": i}
	}
	if _, err := c.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

func findN(t *testing.T, c *mongo.Collection, id string) (int, bool) {
	t.Helper()
	var d struct {
		N int `bson:"n"`
	}
	err := c.FindOne(context.Background(), bson.M{"_id": id}).Decode(&d)
	if err == mongo.ErrNoDocuments {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return d.N, true
}

func TestIndexIDsMakesLookupsIndexSearches(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour) // only the explicit passes below
	c := cl.Database("a").Collection("outcomes")
	insertN(t, c, 50)

	// FerretDB alone: its own _id index is not used by its _id lookups.
	if p := plan(t, c, "k0007"); !strings.Contains(p, "SCAN") || strings.Contains(p, "USING INDEX") {
		t.Fatalf("before the pass the plan is %q; want a scan (has FerretDB learnt to use its _id index? then idIndexer can go)", p)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, c, "k0007"); !strings.Contains(p, "USING INDEX") || !strings.Contains(p, ferretIDIndexSuffix) {
		t.Fatalf("after the pass the plan is %q; want a search with the %s index", p, ferretIDIndexSuffix)
	}
	// The same answers as before.
	if n, ok := findN(t, c, "k0007"); !ok || n != 7 {
		t.Fatalf("k0007: %d %v", n, ok)
	}
	if _, ok := findN(t, c, "k9999"); ok {
		t.Fatal("found an id never inserted")
	}
	// FerretDB's unique _id index still refuses a duplicate.
	if _, err := c.InsertOne(ctx, bson.M{"_id": "k0003", "n": -1}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate _id: err = %v, want a duplicate key error", err)
	}
	// Deletes by _id use it too, and delete the right document.
	if r, err := c.DeleteOne(ctx, bson.M{"_id": "k0011"}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("delete: %v %v", r, err)
	}
	if _, ok := findN(t, c, "k0011"); ok {
		t.Fatal("k0011 still there")
	}
	// A pass over indexed tables changes nothing and fails nothing.
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}

	// A dropped and re-made collection (FerretDB gives it the same table
	// name) is indexed again.
	if err := c.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	insertN(t, c, 5)
	if p := plan(t, c, "k0001"); strings.Contains(p, "USING INDEX") {
		t.Fatalf("re-made collection: plan %q before the pass", p)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, c, "k0001"); !strings.Contains(p, ferretIDIndexSuffix) {
		t.Fatalf("re-made collection: plan %q after the pass", p)
	}

	// A dropped database: the pass creates no file for it (FerretDB would
	// list it again), and a database re-made under the same name (a new
	// file) is indexed.
	if err := cl.Database("a").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.sqlite")); !os.IsNotExist(err) {
		t.Fatalf("a.sqlite after the database was dropped: %v", err)
	}
	names, err := cl.ListDatabaseNames(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "a" {
			t.Fatalf("dropped database listed again: %v", names)
		}
	}
	insertN(t, c, 5)
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, c, "k0002"); !strings.Contains(p, ferretIDIndexSuffix) {
		t.Fatalf("re-made database: plan %q after the pass", p)
	}

	// listIndexes shows FerretDB's own indexes only.
	if idx := listIndexes(t, c); len(idx) != 1 || idx[0]["name"] != "_id_" {
		t.Fatalf("listIndexes: %v", idx)
	}
}

func TestIndexIDsRunsByItself(t *testing.T) {
	_, cl, _ := startFerretEvery(t, 20*time.Millisecond)
	for _, db := range []string{"x", "y"} {
		c := cl.Database(db).Collection("sessions")
		insertN(t, c, 3)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(plan(t, c, "k0001"), ferretIDIndexSuffix) {
			if time.Now().After(deadline) {
				t.Fatalf("%s.sessions not indexed within 10 s: %q", db, plan(t, c, "k0001"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// BenchmarkIDIndex measures what the second index costs an insert and what
// it saves a lookup: groups of 16 documents of about 1.5 KB (an outcome's
// size) inserted with insertMany, and finds by _id in a collection of
// 20,000 of them, without and with the index.
//
//	go test -run '^$' -bench BenchmarkIDIndex -benchtime 200x ./worker/embedded/
func BenchmarkIDIndex(b *testing.B) {
	for _, indexed := range []bool{false, true} {
		name := "ferretdb-alone"
		if indexed {
			name = "with-tat-id-index"
		}
		b.Run(name+"/insert-16", func(b *testing.B) {
			fe, cl := benchFerret(b)
			c := cl.Database("bench").Collection("outcomes")
			insertPadded(b, c, 0, 16)
			if indexed {
				if err := fe.IndexIDs(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				insertPadded(b, c, 16+i*16, 16)
			}
		})
		b.Run(name+"/find-of-20000", func(b *testing.B) {
			fe, cl := benchFerret(b)
			c := cl.Database("bench").Collection("outcomes")
			for i := 0; i < 20000; i += 500 {
				insertPadded(b, c, i, 500)
			}
			if indexed {
				if err := fe.IndexIDs(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				var d bson.M
				if err := c.FindOne(context.Background(), bson.M{"_id": fmt.Sprintf("attest:req-%07d", (i*7919)%20000)}).Decode(&d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchFerret(b *testing.B) (*Ferret, *mongo.Client) {
	fe, c, _ := startFerretEvery(b, time.Hour) // indexed by the benchmark's own pass only
	return fe, c
}

var pad = strings.Repeat("x", 1500)

func insertPadded(b *testing.B, c *mongo.Collection, from, n int) {
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.M{"_id": fmt.Sprintf("attest:req-%07d", from+i), "reply": pad, "created_at": time.Now()}
	}
	if _, err := c.InsertMany(context.Background(), docs); err != nil {
		b.Fatal(err)
	}
}
