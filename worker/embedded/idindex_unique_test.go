package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// idIndexes returns the table of collection coll in database dbName (one
// SQLite file under dir) and, for every index of the table on _id, its
// name and kind: "ferret" (FerretDB's expression) or "path" (the one
// FerretDB's queries use), "unique " before it when it is unique.
func idIndexes(t *testing.T, dir, dbName, coll string) (string, map[string]string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, dbName+".sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table); err != nil {
		t.Fatalf("table of %s.%s: %v", dbName, coll, err)
	}
	rows, err := db.Query(`SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, q string
		if err := rows.Scan(&name, &q); err != nil {
			t.Fatal(err)
		}
		kind := ""
		switch {
		case strings.HasSuffix(q, ferretIDExpr):
			kind = "ferret"
		case strings.HasSuffix(q, idPathExpr):
			kind = "path"
		default:
			continue
		}
		if strings.HasPrefix(q, "CREATE UNIQUE INDEX") {
			kind = "unique " + kind
		}
		out[name] = kind
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return table, out
}

// onlyPath is what a pass leaves: FerretDB's _id index, by its name,
// unique, on the path.
func onlyPath(table string) string {
	return fmt.Sprint(map[string]string{table + ferretIDIndexSuffix: "unique path"})
}

// TestIndexerLeavesOneUniqueIDIndex: after a pass a collection's table has
// one index on _id, under FerretDB's name, unique, on the path FerretDB's
// queries use; FerretDB's commands that find indexes by that name work.
func TestIndexerLeavesOneUniqueIDIndex(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	c := cl.Database("u1").Collection("c")
	insertN(t, c, 5)
	table, before := idIndexes(t, dir, "u1", "c")
	if want := fmt.Sprint(map[string]string{table + ferretIDIndexSuffix: "unique ferret"}); fmt.Sprint(before) != want {
		t.Fatalf("FerretDB made %v; the test expects %v (has FerretDB's naming changed?)", before, want)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, after := idIndexes(t, dir, "u1", "c"); fmt.Sprint(after) != onlyPath(table) {
		t.Fatalf("after the pass the _id indexes are %v, want %v", after, onlyPath(table))
	}
	if p := plan(t, c, "k0003"); !strings.Contains(p, "USING INDEX "+table+ferretIDIndexSuffix) {
		t.Errorf("plan %q", p)
	}
	// FerretDB's metadata is untouched: it lists its _id index.
	if idx := listIndexes(t, c); len(idx) != 1 || idx[0]["name"] != "_id_" {
		t.Errorf("listIndexes: %v", idx)
	}
	// FerretDB's stats find the index by its name: with _id_ the
	// collection's only index, collStats, dbStats and validate answer, and
	// listDatabases (which asks every database for its stats) lists the
	// database.
	var stats struct {
		IndexSizes map[string]int64 `bson:"indexSizes"`
	}
	if err := cl.Database("u1").RunCommand(ctx, bson.D{{Key: "collStats", Value: "c"}}).Decode(&stats); err != nil {
		t.Errorf("collStats: %v", err)
	} else if stats.IndexSizes["_id_"] <= 0 {
		t.Errorf("collStats index sizes %v, want _id_'s", stats.IndexSizes)
	}
	if err := cl.Database("u1").RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Err(); err != nil {
		t.Errorf("dbStats: %v", err)
	}
	if err := cl.Database("u1").RunCommand(ctx, bson.D{{Key: "validate", Value: "c"}}).Err(); err != nil {
		t.Errorf("validate: %v", err)
	}
	names, err := cl.ListDatabaseNames(ctx, bson.M{})
	if err != nil || !slices.Contains(names, "u1") {
		t.Errorf("listDatabases: %v %v, want u1 listed", names, err)
	}
	// FerretDB's commands that name indexes still work on the table.
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
		t.Errorf("createIndexes: %v", err)
	}
	if err := c.Indexes().DropAll(ctx); err != nil {
		t.Errorf("dropIndexes *: %v", err)
	}
	if err := cl.Database("u1").RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: "c"}, {Key: "index", Value: "_id_"}}).Err(); err == nil {
		t.Errorf("dropIndexes _id_ was accepted")
	}
	if _, after := idIndexes(t, dir, "u1", "c"); fmt.Sprint(after) != onlyPath(table) {
		t.Errorf("after FerretDB's index commands: %v", after)
	}
	if _, err := c.InsertOne(ctx, bson.M{"_id": "k0001"}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("duplicate after FerretDB's index commands: %v", err)
	}
}

// TestIndexerUniqueIndexRefusesDuplicates: with the _id index made again
// on the path, a second document with an _id is refused as FerretDB's own
// index refused it: a duplicate key error for insertOne, and for an unordered
// insertMany a write error at the duplicate's index alone, the others
// inserted. The store's correctness rests on this answer.
func TestIndexerUniqueIndexRefusesDuplicates(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	c := cl.Database("u2").Collection("c")
	insertN(t, c, 5)
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if table, ids := idIndexes(t, dir, "u2", "c"); fmt.Sprint(ids) != onlyPath(table) {
		t.Fatalf("_id indexes %v", ids)
	}
	for _, id := range []any{"k0003", "k0000"} {
		_, err := c.InsertOne(ctx, bson.M{"_id": id, "n": -1})
		if !mongo.IsDuplicateKeyError(err) {
			t.Errorf("insert of existing %v: %v, want a duplicate key error", id, err)
		}
	}
	docs := []any{bson.M{"_id": "new1", "n": 1}, bson.M{"_id": "k0002", "n": -1}, bson.M{"_id": "new2", "n": 2}, bson.M{"_id": "new1", "n": -1}}
	_, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		t.Fatalf("insertMany with duplicates: %v", err)
	}
	var got []string
	for _, we := range bwe.WriteErrors {
		got = append(got, fmt.Sprintf("%d:%d", we.Index, we.Code))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[1:11000 3:11000]" {
		t.Errorf("write errors %v, want [1:11000 3:11000]", got)
	}
	for id, want := range map[string]int{"new1": 1, "new2": 2, "k0002": 2} {
		if n, ok := findN(t, c, id); !ok || n != want {
			t.Errorf("%s = %d %v, want %d", id, n, ok, want)
		}
	}
	if n, err := c.CountDocuments(ctx, bson.M{}); err != nil || n != 7 {
		t.Errorf("documents: %d %v, want 7", n, err)
	}
	// A number and a string of the same digits are different _ids, as in
	// FerretDB's index.
	if _, err := c.InsertMany(ctx, []any{bson.M{"_id": 7}, bson.M{"_id": "7"}}); err != nil {
		t.Errorf("7 and \"7\": %v", err)
	}
	if _, err := c.InsertOne(ctx, bson.M{"_id": 7}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("second 7: %v", err)
	}
}

// TestIndexerReplacesEarlierIndexes: a store an earlier build indexed (a
// non-unique tat_id_path index beside FerretDB's; or a unique
// tat_id_unique index in place of FerretDB's) ends as any other: one
// unique index on the path under FerretDB's name.
func TestIndexerReplacesEarlierIndexes(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "u3.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		coll, want string
		build      func(table string) []string
	}{
		{"first", "map[%[1]s__id_:unique ferret tat_id_path:%[1]s:path]", func(tb string) []string {
			return []string{fmt.Sprintf(`CREATE INDEX %s ON %s (_ferretdb_sjson->'$._id')`, quoteIdent(oldIDIndexPrefix+tb), quoteIdent(tb))}
		}},
		{"interim", "map[tat_id_unique:%[1]s:unique path]", func(tb string) []string {
			return []string{
				fmt.Sprintf(`CREATE UNIQUE INDEX %s ON %s (_ferretdb_sjson->'$._id')`, quoteIdent(interimIDIndexPrefix+tb), quoteIdent(tb)),
				fmt.Sprintf(`DROP INDEX %s`, quoteIdent(tb+ferretIDIndexSuffix)),
			}
		}},
	} {
		c := cl.Database("u3").Collection(tc.coll)
		insertN(t, c, 5)
		table, _ := idIndexes(t, dir, "u3", tc.coll)
		for _, q := range tc.build(table) {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if _, before := idIndexes(t, dir, "u3", tc.coll); fmt.Sprint(before) != fmt.Sprintf(tc.want, table) {
			t.Fatalf("%s: the earlier build's state: %v", tc.coll, before)
		}
		if err := fe.IndexIDs(ctx); err != nil {
			t.Fatal(err)
		}
		if _, after := idIndexes(t, dir, "u3", tc.coll); fmt.Sprint(after) != onlyPath(table) {
			t.Errorf("%s: after the pass: %v", tc.coll, after)
		}
		if p := plan(t, c, "k0004"); !strings.Contains(p, "USING INDEX "+table+ferretIDIndexSuffix) {
			t.Errorf("%s: plan %q", tc.coll, p)
		}
		if _, err := c.InsertOne(ctx, bson.M{"_id": "k0004"}); !mongo.IsDuplicateKeyError(err) {
			t.Errorf("%s: duplicate after the replacement: %v", tc.coll, err)
		}
	}
}

// TestIndexerLeavesForeignIndexAlone: an index that holds the name of a
// table's _id index but is not FerretDB's or the pass's (another
// expression, or the path without uniqueness) makes the pass fail for that
// table and change nothing.
func TestIndexerLeavesForeignIndexAlone(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "u5.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, def := range []struct{ expr, kind string }{
		{`(_ferretdb_sjson->'n')`, ""},
		{idPathExpr, "path"},
	} {
		coll := fmt.Sprintf("c%d", i)
		c := cl.Database("u5").Collection(coll)
		insertN(t, c, 3)
		table, _ := idIndexes(t, dir, "u5", coll)
		for _, q := range []string{
			fmt.Sprintf(`CREATE UNIQUE INDEX %s ON %s (_ferretdb_sjson->"_id")`, quoteIdent("keep_"+table), quoteIdent(table)),
			fmt.Sprintf(`DROP INDEX %s`, quoteIdent(table+ferretIDIndexSuffix)),
			fmt.Sprintf(`CREATE INDEX %s ON %s %s`, quoteIdent(table+ferretIDIndexSuffix), quoteIdent(table), def.expr),
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if err := fe.IndexIDs(ctx); !errors.Is(err, errIDIndexName) {
			t.Errorf("%s: pass: %v, want errIDIndexName", def.expr, err)
		}
		want := map[string]string{"keep_" + table: "unique ferret"}
		if def.kind != "" {
			want[table+ferretIDIndexSuffix] = def.kind
		}
		if _, after := idIndexes(t, dir, "u5", coll); fmt.Sprint(after) != fmt.Sprint(want) {
			t.Errorf("%s: after the pass: %v, want %v untouched", def.expr, after, want)
		}
		if _, err := c.InsertOne(ctx, bson.M{"_id": "k0001"}); !mongo.IsDuplicateKeyError(err) {
			t.Errorf("%s: duplicate: %v", def.expr, err)
		}
		if _, err := db.Exec(fmt.Sprintf(`DROP INDEX %s`, quoteIdent(table+ferretIDIndexSuffix))); err != nil {
			t.Fatal(err) // the next case's pass sees only its own
		}
	}
}

// TestIndexerSwapKeepsIDsUnique: writers race to insert the same _ids into
// fresh collections while passes swap the indexes under them; every _id is
// inserted exactly once (there is no moment without a unique index).
func TestIndexerSwapKeepsIDsUnique(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	const rounds, writers, ids = 6, 4, 40
	for r := range rounds {
		c := cl.Database("u4").Collection(fmt.Sprintf("c%d", r))
		if err := cl.Database("u4").CreateCollection(ctx, c.Name()); err != nil {
			t.Fatal(err)
		}
		var won [ids]atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range ids {
					_, err := c.InsertOne(ctx, bson.M{"_id": fmt.Sprintf("id%03d", i), "w": w})
					switch {
					case err == nil:
						won[i].Add(1)
					case !mongo.IsDuplicateKeyError(err):
						t.Errorf("insert: %v", err)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			time.Sleep(time.Duration(r) * 2 * time.Millisecond)
			if err := fe.IndexIDs(ctx); err != nil {
				t.Errorf("pass: %v", err)
			}
		}()
		close(start)
		wg.Wait()
		for i := range ids {
			if n := won[i].Load(); n != 1 {
				t.Errorf("round %d: id%03d inserted %d times", r, i, n)
			}
		}
		if n, err := c.CountDocuments(ctx, bson.M{}); err != nil || n != ids {
			t.Errorf("round %d: %d documents (%v), want %d", r, n, err, ids)
		}
		if table, after := idIndexes(t, dir, "u4", c.Name()); fmt.Sprint(after) != onlyPath(table) {
			t.Errorf("round %d: _id indexes %v", r, after)
		}
	}
}
