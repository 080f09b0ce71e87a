package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// openFDsUnder lists this process's open file descriptors on files under dir.
func openFDsUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var held []string
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(l, dir) {
			held = append(held, l)
		}
	}
	return held
}

// sideFiles lists the names of dir's files.
func sideFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestIndexerDroppedDatabaseLeavesNoFiles: dropping a database while the
// indexer holds a connection to it must not leave its -wal and -shm files
// behind. FerretDB's Drop closes its pool and removes only <db>.sqlite,
// counting on its own close (the last connection) to checkpoint and remove
// the -wal and -shm; with the indexer's connection still open its close is
// not the last, and the indexer's own close comes after the file was
// unlinked, when SQLite refuses to checkpoint or delete anything
// (databaseIsUnmoved).
func TestIndexerDroppedDatabaseLeavesNoFiles(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	c := cl.Database("gone").Collection("outcomes")
	insertN(t, c, 20)
	if err := fe.IndexIDs(ctx); err != nil { // the indexer now holds gone.sqlite open
		t.Fatal(err)
	}
	if err := cl.Database("gone").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fe.IndexIDs(ctx); err != nil { // notices the drop, closes
		t.Fatal(err)
	}
	var left []string
	for _, n := range sideFiles(t, dir) {
		if strings.HasPrefix(n, "gone.sqlite") {
			left = append(left, n)
		}
	}
	if len(left) > 0 {
		t.Errorf("after dropping database gone: %v left in FerretDB's directory", left)
	}
	// Whatever was left must not come back: a database made again under
	// the name holds none of the dropped one's documents and is sound.
	insertN(t, cl.Database("gone").Collection("other"), 3)
	if n, err := c.CountDocuments(ctx, bson.M{}); err != nil || n != 0 {
		t.Fatalf("re-made database: %d documents of the dropped one's outcomes (%v)", n, err)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	fe.Stop()
	checkIntegrity(t, filepath.Join(dir, "gone.sqlite"))
}

// checkIntegrity runs PRAGMA integrity_check on a database file nothing
// else has open.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("%s: integrity_check %q (%v)", filepath.Base(path), res, err)
	}
}

// TestIndexerDropAndRemakeBetweenPasses drops and re-makes one database
// over and over, between passes of the indexer that run as fast as they
// can, while another database takes writes: no write may be lost or fail,
// and every file must pass SQLite's integrity check.
//
// A database dropped and re-made while a pass has its file open is not
// safe (decision 0004): the pass's connection to the old file, closing,
// may remove or truncate the -wal and -shm files the re-made database
// uses by the same names (SQLite's "unlinking a database while in use").
// The worker never drops a database; this test, run with the drops racing
// the passes, failed 1 run in 6 (a disk I/O error, or a SIGBUS in
// FerretDB).
func TestIndexerDropAndRemakeBetweenPasses(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var between sync.Mutex // a pass, or a round of drop and re-make
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			between.Lock()
			_ = fe.IndexIDs(ctx)
			between.Unlock()
		}
	}()
	keep := cl.Database("keep").Collection("outcomes")
	total := 0
	deadline := time.Now().Add(5 * time.Second)
	round := 0
	for ; time.Now().Before(deadline); round++ {
		between.Lock()
		c := cl.Database("churn").Collection("outcomes")
		docs := make([]any, 30)
		for i := range docs {
			docs[i] = bson.M{"_id": fmt.Sprintf("r%d-%d", round, i), "reply": pad[:200]}
		}
		if _, err := c.InsertMany(ctx, docs); err != nil {
			t.Fatalf("round %d: insert into the re-made database: %v", round, err)
		}
		if n, err := c.CountDocuments(ctx, bson.M{}); err != nil || n != 30 {
			t.Fatalf("round %d: re-made database holds %d documents (%v), want 30", round, n, err)
		}
		if _, ok := findN(t, c, fmt.Sprintf("r%d-%d", round, 7)); !ok {
			t.Fatalf("round %d: lookup by _id misses", round)
		}
		if _, err := keep.InsertOne(ctx, bson.M{"_id": fmt.Sprintf("k%d", round), "n": round}); err != nil {
			t.Fatalf("round %d: insert into keep: %v", round, err)
		}
		total++
		if err := cl.Database("churn").Drop(ctx); err != nil {
			t.Fatalf("round %d: drop: %v", round, err)
		}
		between.Unlock()
	}
	close(stop)
	wg.Wait()
	if n, err := keep.CountDocuments(ctx, bson.M{}); err != nil || int(n) != total {
		t.Fatalf("keep holds %d documents (%v), want %d", n, err, total)
	}
	t.Logf("%d drop-and-remake rounds", round)
	fe.Stop()
	checkIntegrity(t, filepath.Join(dir, "keep.sqlite"))
}

// TestIndexerQuotesCollectionNames: the indexer reads table names from
// FerretDB's metadata and quotes them itself (quoteIdent): a collection
// name full of SQL punctuation is indexed, nothing else in the database
// changes, and no SQL in the name runs. (Names with '"' or '\\' are left
// out: FerretDB 1.24 quotes its own CREATE TABLE with Go's %q, so it
// refuses the first, or runs what follows the quote as SQL, and makes a
// table whose name differs from its metadata for the second; the indexer
// then finds no such table and leaves it unindexed.)
func TestIndexerQuotesCollectionNames(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	db := cl.Database("q")
	victim := db.Collection("victim")
	insertN(t, victim, 3)
	names := []string{
		`it's`, `x'); DROP TABLE [victim_a1f4bcb5]; --`, `semi;colon -- c`, "sp ace", "ünï",
		"back`tick", "brack[et]", "per%cent", "a.b.c", "victim_a1f4bcb5_tat_id",
	}
	accepted := names
	for _, n := range names {
		if _, err := db.Collection(n).InsertOne(ctx, bson.M{"_id": "k0001", "n": 1}); err != nil {
			t.Fatalf("collection %q: %v", n, err)
		}
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatalf("pass: %v", err)
	}
	for _, n := range accepted {
		if p := plan(t, db.Collection(n), "k0001"); !strings.Contains(p, ferretIDIndexSuffix) {
			t.Errorf("collection %q: plan %q after the pass", n, p)
		}
	}
	if c, err := victim.CountDocuments(ctx, bson.M{}); err != nil || c != 3 {
		t.Fatalf("victim holds %d (%v)", c, err)
	}
	fe.Stop()
	checkIntegrity(t, filepath.Join(dir, "q.sqlite"))
}

// TestIndexerLetsCheckpointsFinish: between passes the indexer holds no
// read transaction, so a checkpoint can copy the whole WAL back and
// truncate it (otherwise the WAL grows without bound).
func TestIndexerLetsCheckpointsFinish(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, 5*time.Millisecond)
	c := cl.Database("w").Collection("outcomes")
	insertN(t, c, 200)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(plan(t, c, "k0001"), ferretIDIndexSuffix) {
		if time.Now().After(deadline) {
			t.Fatal("not indexed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = fe
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "w.sqlite")+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 20 { // while the indexer passes every 5 ms
		if _, err := c.InsertOne(ctx, bson.M{"_id": fmt.Sprintf("x%d", i), "reply": pad}); err != nil {
			t.Fatal(err)
		}
		var busy, logFrames, ckpt int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &ckpt); err != nil {
			t.Fatal(err)
		}
		if busy != 0 || logFrames != ckpt {
			// A FerretDB reader may hold it for a moment; try again.
			time.Sleep(20 * time.Millisecond)
			if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &ckpt); err != nil {
				t.Fatal(err)
			}
			if busy != 0 || logFrames != ckpt {
				t.Fatalf("checkpoint %d: busy %d, %d of %d frames", i, busy, ckpt, logFrames)
			}
		}
	}
}

// TestIndexerReleasesFilesOnStop: after Stop nothing of the indexer holds a
// file of FerretDB's directory open, even when Stop comes in the middle of
// a pass. A pass's metadata query runs under the context Stop cancels; with
// modernc.org/sqlite v1.32 a query interrupted by its context leaves its
// statement unfinalized, so the connection's Close (sqlite3_close_v2) only
// makes it a zombie that keeps the database, -wal and -shm open.
func TestIndexerReleasesFilesOnStop(t *testing.T) {
	// FerretDB's layout, without FerretDB: a metadata table naming 50
	// tables, so that a pass has work to be stopped in.
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "a.sqlite")+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // its own files are one connection's, counted in before
	if _, err := db.Exec(`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT, settings TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		tb := fmt.Sprintf("c%d_%08x", i, i)
		if _, err := db.Exec(fmt.Sprintf(`CREATE TABLE %q (_ferretdb_sjson TEXT)`, tb)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO _ferretdb_collections VALUES (?, ?, '{}')`, tb, tb); err != nil {
			t.Fatal(err)
		}
	}
	before := len(openFDsUnder(t, dir))
	for round := range 15 {
		for i := range 50 { // work for the next run's passes: FerretDB's _id index, as FerretDB makes it
			tb := fmt.Sprintf("c%d_%08x", i, i)
			if _, err := db.Exec(fmt.Sprintf(`DROP INDEX IF EXISTS "%s__id_"`, tb)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(fmt.Sprintf(`CREATE UNIQUE INDEX "%s__id_" ON %q (_ferretdb_sjson->"_id")`, tb, tb)); err != nil {
				t.Fatal(err)
			}
		}
		x := newIDIndexer(dir)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); x.run(ctx, time.Millisecond) }()
		time.Sleep(time.Duration(round) * 200 * time.Microsecond)
		cancel() // as Stop does
		<-done
		// SQLite defers closing a file another connection of the process
		// holds a lock on (POSIX locks are per process) until that one lets
		// go: one such descriptor may wait on the test's own connection,
		// but runs must not add up.
		if held := openFDsUnder(t, dir); len(held) > before+1 {
			t.Fatalf("run %d: the stopped indexers left %d files open: %v", round, len(held)-before, held)
		}
	}
	db.Close()
	if held := openFDsUnder(t, dir); len(held) > 0 {
		t.Fatalf("with every connection closed, %v still open", held)
	}
}

// TestIndexIDsAfterStop: a pass asked for after Stop opens nothing that
// nothing closes.
func TestIndexIDsAfterStop(t *testing.T) {
	ctx := context.Background()
	fe, cl, dir := startFerretEvery(t, time.Hour)
	insertN(t, cl.Database("s1").Collection("c"), 3)
	_ = cl.Disconnect(ctx)
	fe.Stop()
	_ = fe.IndexIDs(ctx)
	if held := openFDsUnder(t, dir); len(held) > 0 {
		t.Errorf("IndexIDs after Stop opened %v and nothing closes them", held)
	}
}

// TestIndexerKeepsCreateIndexesWorking: a client index FerretDB names
// <table>_<name> must not meet the index the indexer adds: createIndexes
// of an index called "tat_id" (any case) works on the embedded FerretDB as
// on any other, and the collection keeps an _id index its lookups use.
func TestIndexerKeepsCreateIndexesWorking(t *testing.T) {
	ctx := context.Background()
	fe, cl, _ := startFerretEvery(t, time.Hour)
	for _, name := range []string{"tat_id", "TAT_ID"} {
		c := cl.Database("ix").Collection("c_" + name)
		insertN(t, c, 3)
		if err := fe.IndexIDs(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetName(name)})
		if err != nil {
			t.Errorf("createIndexes %q after the pass: %v", name, err)
		}
	}
	// Made by the client first: the indexer must still give the table an
	// _id index.
	c := cl.Database("ix").Collection("first")
	insertN(t, c, 3)
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetName("tat_id")}); err != nil {
		t.Fatal(err)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, c, "k0001"); !strings.Contains(p, "USING INDEX") {
		t.Errorf("collection with a client index named tat_id: plan %q", p)
	}
}

// TestIndexerCappedAndRenamedCollections: a capped collection (its table
// has FerretDB's record id column too) is indexed and answers right; a
// renamed collection (FerretDB keeps its table) keeps the index; dropping
// an index through FerretDB leaves the indexer's alone.
func TestIndexerCappedAndRenamedCollections(t *testing.T) {
	ctx := context.Background()
	fe, cl, _ := startFerretEvery(t, time.Hour)
	db := cl.Database("cr")
	if err := db.CreateCollection(ctx, "capped", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(10)); err != nil {
		t.Fatal(err)
	}
	capped := db.Collection("capped")
	insertN(t, capped, 5)
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	docs := make([]any, 20)
	for i := range docs {
		docs[i] = bson.M{"_id": fmt.Sprintf("m%04d", i), "n": 100 + i}
	}
	if _, err := capped.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, capped, "m0019"); !strings.Contains(p, ferretIDIndexSuffix) {
		t.Errorf("capped: plan %q", p)
	}
	if n, ok := findN(t, capped, "m0019"); !ok || n != 119 {
		t.Errorf("capped: m0019 = %d %v", n, ok)
	}

	c := db.Collection("before")
	insertN(t, c, 5)
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := fe.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "cr.before"}, {Key: "to", Value: "cr.after"}}).Err(); err != nil {
		t.Fatal(err)
	}
	after := db.Collection("after")
	if err := after.Indexes().DropAll(ctx); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, after, "k0003"); !strings.Contains(p, ferretIDIndexSuffix) {
		t.Errorf("renamed, indexes dropped: plan %q", p)
	}
	if n, ok := findN(t, after, "k0003"); !ok || n != 3 {
		t.Errorf("renamed: k0003 = %d %v", n, ok)
	}
	if idx := listIndexes(t, after); len(idx) != 1 {
		t.Errorf("listIndexes after dropIndexes: %v", idx)
	}
}
