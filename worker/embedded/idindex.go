package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	// The SQLite driver FerretDB itself uses (registered as "sqlite").
	_ "modernc.org/sqlite"
)

// FerretDB 1.24 on SQLite makes each collection's unique _id index on the
// expression _ferretdb_sjson->"_id", but looks a document up by _id with
// WHERE _ferretdb_sjson->'$._id' = ?. SQLite matches an expression index
// only to the same expression written the same way, so every lookup, update
// and delete by _id scans the whole table, decoding each document's JSON
// (80 to 500 ms per lookup at 20,000 outcomes of 1.5 KB on this
// machine). idIndexer gives every collection's table a unique index on the
// expression FerretDB's queries use (named tat_id_unique:<table>), so those
// become index searches, and drops FerretDB's own (<table>__id_), which no
// query of FerretDB's uses: two indexes of the same values cost every
// insert a second JSON extraction and a second b-tree insert (about a
// seventh of the store's CPU per attest, BenchmarkStoreFloor). The two
// expressions name the same value (a text right operand of -> is the label
// $.<text>), so the unique index refuses exactly the documents FerretDB's
// refused, with the same SQLite error (SQLITE_CONSTRAINT_UNIQUE), which
// FerretDB reports as a duplicate key (E11000). Both steps are one
// transaction, the new index made before the old one goes: there is no
// moment without a unique index on _id. An earlier version's non-unique
// index (tat_id_path:<table>) goes in the same transaction. The indexes are
// FerretDB's business otherwise: ours is not in FerretDB's metadata
// (listIndexes still shows _id_, which FerretDB never drops or remakes),
// and it goes with its table when the collection is dropped. Decision 0004.

// idIndexPrefix starts the name of the index idIndexer adds:
// tat_id_unique:<table>. FerretDB names a client's index <table>_<name>,
// and its table names have no colon, so no index of FerretDB's can take
// this name, in any case (SQLite compares index names case-insensitively).
const idIndexPrefix = "tat_id_unique:"

// oldIDIndexPrefix starts the name of the non-unique index earlier
// versions added beside FerretDB's; a pass replaces it.
const oldIDIndexPrefix = "tat_id_path:"

// ferretIDIndexSuffix ends the name of FerretDB's own _id index:
// <table>_ and the index name _id_.
const ferretIDIndexSuffix = "__id_"

// idIndexInterval is how often idIndexer looks for tables without the
// index: a collection made between two looks is scanned on lookups until
// the next.
var idIndexInterval = time.Second

type idIndexer struct {
	dir string

	mu      sync.Mutex
	stopped bool
	// seen is the state of each database file (and its WAL) when a pass
	// last found every table of it indexed: a file that has not changed
	// since has nothing new.
	seen map[string]fileState
}

type fileState struct {
	size, walSize int64
	mod, walMod   time.Time
}

func newIDIndexer(dir string) *idIndexer {
	return &idIndexer{dir: dir, seen: map[string]fileState{}}
}

// run indexes every interval until ctx ends.
func (x *idIndexer) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	defer x.stop()
	for {
		_ = x.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errIndexerStopped = errors.New("embedded: the FerretDB server is stopped")

// pass adds the index to every table of every FerretDB database under dir
// that lacks it. It returns the first error and goes on past it: a
// database dropped or being made meanwhile is looked at again next time.
// It holds no connection between passes (one held open would keep a
// dropped database's -wal and -shm files alive), and ctx ends it between
// files, never inside a statement.
func (x *idIndexer) pass(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopped {
		return errIndexerStopped
	}
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(files))
	var first error
	for _, f := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		present[f] = true
		st, ok := statDB(f)
		if !ok || x.seen[f] == st {
			continue
		}
		// The state from before the look: a collection made while it
		// runs changes the file after that, so the next pass looks again
		// (as it does once after the indexes this pass makes).
		if err := indexFile(f); err == nil {
			x.seen[f] = st
		} else if first == nil {
			first = fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	for f := range x.seen {
		if !present[f] {
			delete(x.seen, f)
		}
	}
	return first
}

// statDB returns the size and modification time of a database file and
// its WAL; ok is false when the database file is gone.
func statDB(path string) (fileState, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}, false
	}
	st := fileState{size: fi.Size(), mod: fi.ModTime()}
	if wi, err := os.Stat(path + "-wal"); err == nil {
		st.walSize, st.walMod = wi.Size(), wi.ModTime()
	}
	return st, true
}

// indexFile gives the tables of one database file that lack it the unique
// index (swapIDIndex).
// Its statements run to their end whatever happens to the caller's
// context (an interrupted query can leave its statement unfinalized and
// the file open after Close); SQLite's busy timeout bounds them.
func indexFile(path string) (err error) {
	ctx := context.Background()
	// mode=rw: never create a file (FerretDB would list it as a database)
	// when the database went between the glob and here.
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", u)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	db.SetMaxOpenConns(1)
	// The tables without the unique index, or with either index it
	// replaces.
	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_schema s WHERE s.type = 'index' AND s.tbl_name = c.table_name
			AND s.name = '`+idIndexPrefix+`' || c.table_name)
		OR EXISTS (SELECT 1 FROM sqlite_schema s WHERE s.type = 'index' AND s.tbl_name = c.table_name
			AND s.name IN ('`+oldIDIndexPrefix+`' || c.table_name, c.table_name || '`+ferretIDIndexSuffix+`'))`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // FerretDB has not made its metadata table yet
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	var first error
	for _, t := range tables {
		if err := swapIDIndex(ctx, db, t); err != nil && first == nil && !strings.Contains(err.Error(), "no such table") {
			first = fmt.Errorf("index %s: %w", t, err)
		}
	}
	return first
}

// swapIDIndex makes the unique index of table t and drops the indexes it
// replaces, in one transaction: the unique index is made first, so the
// table is never without one (a failure rolls all of it back).
func swapIDIndex(ctx context.Context, db *sql.DB, t string) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for _, q := range []string{
		fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (_ferretdb_sjson->'$._id')`, quoteIdent(idIndexPrefix+t), quoteIdent(t)),
		fmt.Sprintf(`DROP INDEX IF EXISTS %s`, quoteIdent(t+ferretIDIndexSuffix)),
		fmt.Sprintf(`DROP INDEX IF EXISTS %s`, quoteIdent(oldIDIndexPrefix+t)),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// stop makes every later pass fail without opening anything.
func (x *idIndexer) stop() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.stopped = true
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
