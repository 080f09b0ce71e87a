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
// (about half a second per lookup at 20,000 outcomes of 1.5 KB on this
// machine). idIndexer adds to every collection's table a second index on
// the expression FerretDB's queries use (named <table>_tat_id), so those
// become index searches. The index is FerretDB's business otherwise: it is
// not in FerretDB's metadata (listIndexes does not show it), and it goes
// with its table when the collection is dropped. Decision 0004.

// idIndexSuffix names the index idIndexer adds: <table>_tat_id.
const idIndexSuffix = "_tat_id"

// idIndexInterval is how often idIndexer looks for tables without the
// index: a collection made between two looks is scanned on lookups until
// the next.
var idIndexInterval = time.Second

type idIndexer struct {
	dir string

	mu  sync.Mutex
	dbs map[string]*idIndexedDB // by file path
}

type idIndexedDB struct {
	db   *sql.DB
	info os.FileInfo // of the file db was opened on
}

func newIDIndexer(dir string) *idIndexer {
	return &idIndexer{dir: dir, dbs: map[string]*idIndexedDB{}}
}

// run indexes every interval until ctx ends, then closes its connections.
func (x *idIndexer) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	defer x.close()
	for {
		_ = x.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass adds the index to every table of every FerretDB database under dir
// that lacks it. It returns the first error and goes on past it: a
// database dropped or being made meanwhile is looked at again next time.
func (x *idIndexer) pass(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(files))
	var first error
	for _, f := range files {
		seen[f] = true
		if err := x.indexFile(ctx, f); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	for f, d := range x.dbs {
		if !seen[f] {
			_ = d.db.Close()
			delete(x.dbs, f)
		}
	}
	return first
}

func (x *idIndexer) indexFile(ctx context.Context, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	d := x.dbs[path]
	if d != nil && !os.SameFile(d.info, info) {
		// Dropped and made again: the connection holds the old file.
		_ = d.db.Close()
		delete(x.dbs, path)
		d = nil
	}
	if d == nil {
		// mode=rw: never create a file (FerretDB would list it as a
		// database) when the database went between the glob and here.
		u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)"
		db, err := sql.Open("sqlite", u)
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(1)
		d = &idIndexedDB{db: db, info: info}
		x.dbs[path] = d
	}
	rows, err := d.db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_schema s WHERE s.type = 'index' AND s.name = c.table_name || '`+idIndexSuffix+`')`)
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
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (_ferretdb_sjson->'$._id')`, quoteIdent(t+idIndexSuffix), quoteIdent(t))
		if _, err := d.db.ExecContext(ctx, q); err != nil && first == nil && !strings.Contains(err.Error(), "no such table") {
			first = fmt.Errorf("index %s: %w", t, err)
		}
	}
	return first
}

func (x *idIndexer) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for f, d := range x.dbs {
		_ = d.db.Close()
		delete(x.dbs, f)
	}
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
