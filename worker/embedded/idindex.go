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
// (80 to 500 ms per lookup at 20,000 outcomes of 1.5 KB on this machine).
// idIndexer makes FerretDB's _id index again, under FerretDB's own name
// (<table>__id_) and unique as before, on the expression FerretDB's queries
// use, so those become index searches. The two expressions name the same
// value (a text right operand of -> is the label $.<text>), so the index
// refuses exactly the documents FerretDB's refused, with the same SQLite
// error (SQLITE_CONSTRAINT_UNIQUE), which FerretDB reports as a duplicate
// key (E11000). The drop and the create are one transaction that holds
// SQLite's write lock from its start: no insert sees the table without a
// unique _id index. Keeping FerretDB's name keeps what FerretDB does by
// that name working (its collStats, dbStats and listDatabases find index
// sizes by it), and no other index can hold it: FerretDB refuses a client
// index called _id_, and the pass checks that the index of that name is
// the table's, with FerretDB's expression or ours, before it touches it.
// Decision 0004.

// ferretIDIndexSuffix ends the name of FerretDB's _id index: <table>_ and
// the index name _id_.
const ferretIDIndexSuffix = "__id_"

// The definitions of the _id index, FerretDB's and the pass's, as SQLite
// keeps them (sqlite_schema.sql), end with these.
const (
	ferretIDExpr = `(_ferretdb_sjson->"_id")`
	idPathExpr   = `(_ferretdb_sjson->'$._id')`
)

// Indexes of earlier versions of the indexer, replaced by a pass: the
// first added a non-unique index on the path beside FerretDB's
// (tat_id_path:<table>); a build of 2026-12-02 a unique one in its place
// (tat_id_unique:<table>), under a name of its own.
const (
	oldIDIndexPrefix     = "tat_id_path:"
	interimIDIndexPrefix = "tat_id_unique:"
)

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

// indexFile gives each table of one database file that needs it the _id
// index on FerretDB's query path (fixIDIndex).
// Its statements run to their end whatever happens to the caller's
// context (an interrupted query can leave its statement unfinalized and
// the file open after Close); SQLite's busy timeout bounds them.
func indexFile(path string) (err error) {
	ctx := context.Background()
	// mode=rw: never create a file (FerretDB would list it as a database)
	// when the database went between the glob and here. _txlock=immediate:
	// a transaction takes the write lock when it begins, so what it reads
	// of the schema holds until it commits.
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", u)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	db.SetMaxOpenConns(1)
	// Read only: which tables have work (fixIDIndex looks again, in its
	// transaction, before it changes anything).
	rows, err := db.QueryContext(ctx, `SELECT c.table_name,
		COALESCE((SELECT s.sql FROM sqlite_schema s WHERE s.type = 'index'
			AND s.name = c.table_name || '`+ferretIDIndexSuffix+`' COLLATE NOCASE AND s.tbl_name = c.table_name), ''),
		EXISTS (SELECT 1 FROM sqlite_schema s WHERE s.type = 'index' AND s.tbl_name = c.table_name
			AND s.name COLLATE NOCASE IN ('`+oldIDIndexPrefix+`' || c.table_name, '`+interimIDIndexPrefix+`' || c.table_name))
		FROM _ferretdb_collections c`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // FerretDB has not made its metadata table yet
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var t, def string
		var earlier bool
		if err := rows.Scan(&t, &def, &earlier); err != nil {
			rows.Close()
			return err
		}
		done := strings.HasPrefix(def, "CREATE UNIQUE INDEX ") && strings.HasSuffix(def, idPathExpr)
		if earlier || (def != "" && !done) {
			tables = append(tables, t)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	var first error
	for _, t := range tables {
		if err := fixIDIndex(ctx, db, t); err != nil && first == nil && !strings.Contains(err.Error(), "no such table") {
			first = fmt.Errorf("index %s: %w", t, err)
		}
	}
	return first
}

// errIDIndexName: the index named <table>__id_ is not what FerretDB or a
// pass made for the table; the pass leaves the table alone.
var errIDIndexName = errors.New("the index named for the table's _id index is not one FerretDB or the indexer made")

// fixIDIndex, in one transaction that holds the write lock from its start
// (so the table is never seen without a unique _id index, and nothing
// changes between what it reads and what it does):
//
//   - FerretDB's _id index (<table>__id_ on FerretDB's expression) is
//     dropped and made again, unique, on the path FerretDB's queries use;
//   - a table without <table>__id_ is left as it is (FerretDB makes the
//     table, then its index, and its CREATE would fail on a name already
//     taken), unless an earlier build's unique index stands in its place;
//   - the earlier builds' indexes of the table go once <table>__id_ is on
//     the path.
//
// An index named <table>__id_ that belongs to another table or has another
// definition is an error, and nothing is changed.
func fixIDIndex(ctx context.Context, db *sql.DB, t string) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// index returns the table and definition of the index called name
	// ("" when there is none).
	index := func(name string) (table, def string, err error) {
		err = tx.QueryRowContext(ctx, `SELECT tbl_name, COALESCE(sql, '') FROM sqlite_schema
			WHERE type = 'index' AND name = ? COLLATE NOCASE`, name).Scan(&table, &def)
		if errors.Is(err, sql.ErrNoRows) {
			return "", "", nil
		}
		return table, def, err
	}
	exec := func(q string) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}
	idName := t + ferretIDIndexSuffix
	create := fmt.Sprintf(`CREATE UNIQUE INDEX %s ON %s %s`, quoteIdent(idName), quoteIdent(t), idPathExpr)
	unique := func(def string) bool { return strings.HasPrefix(def, "CREATE UNIQUE INDEX ") }
	idTable, idDef, err := index(idName)
	if err != nil {
		return err
	}
	interimTable, interimDef, err := index(interimIDIndexPrefix + t)
	if err != nil {
		return err
	}
	switch {
	case idTable == "" && interimTable == t && unique(interimDef) && strings.HasSuffix(interimDef, idPathExpr):
		// An earlier build's unique index stands in for FerretDB's.
		if err := exec(create); err != nil {
			return err
		}
	case idTable == "":
		return tx.Commit() // FerretDB is still making the collection
	case idTable != t || !unique(idDef):
		return fmt.Errorf("%s: %w (table %s: %s)", idName, errIDIndexName, idTable, idDef)
	case strings.HasSuffix(idDef, idPathExpr):
		// Done by an earlier pass.
	case strings.HasSuffix(idDef, ferretIDExpr):
		if err := exec(`DROP INDEX ` + quoteIdent(idName)); err != nil {
			return err
		}
		if err := exec(create); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: %w (%s)", idName, errIDIndexName, idDef)
	}
	for _, name := range []string{oldIDIndexPrefix + t, interimIDIndexPrefix + t} {
		table, _, err := index(name)
		if err != nil {
			return err
		}
		if table == t {
			if err := exec(`DROP INDEX ` + quoteIdent(name)); err != nil {
				return err
			}
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
