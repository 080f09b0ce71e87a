package mongostore

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Where the collections live. On MongoDB they share the database named at
// Open. On FerretDB's SQLite backend a database is one SQLite file, and a
// file has one writer at a time: the attest path writes three collections
// at once (replay claims, session revisions, outcomes), and their commits
// queued behind each other in SQLite's busy handler, which sleeps 1, 2,
// 5, 10, ... ms between tries; each collection in a database of its own
// commits on its own (docs/decisions/0005-ferretdb-database-per-collection.md).

// Layout says where the store's collections live.
type Layout int

const (
	// LayoutAuto decides on first use: LayoutPerCollection on a FerretDB
	// server whose database named at Open holds none of the store's
	// collections, LayoutSingle otherwise (MongoDB, or a FerretDB store
	// written before the layout existed, which keeps its layout).
	LayoutAuto Layout = iota
	// LayoutSingle keeps every collection in the database named at Open.
	LayoutSingle
	// LayoutPerCollection keeps each collection in a database of its
	// own, named <database>_<collection>.
	LayoutPerCollection
)

func (l Layout) String() string {
	switch l {
	case LayoutSingle:
		return "single"
	case LayoutPerCollection:
		return "per-collection"
	}
	return "auto"
}

// WithLayout sets the layout instead of deciding it on first use. Every
// client of one store must use the same layout: tests use it to pin one.
func WithLayout(l Layout) Option {
	return func(s *Store) { s.layout = l }
}

// allCollections are every collection the store reads or writes.
var allCollections = []string{collOutcomes, collPublished, collReplays, collSessions, collUsers, collEmails, collProfiles, collSecrets}

// collectionDatabase is the database that holds collection coll of the
// store named name under the per-collection layout.
func collectionDatabase(name, coll string) string { return name + "_" + coll }

// Layout returns the layout in use, deciding it first if need be.
func (s *Store) Layout(ctx context.Context) (Layout, error) {
	if _, err := s.collections(ctx); err != nil {
		return LayoutAuto, err
	}
	return s.resolved, nil
}

// coll returns the collection named name, where the layout keeps it.
func (s *Store) coll(ctx context.Context, name string) (*mongo.Collection, error) {
	cs, err := s.collections(ctx)
	if err != nil {
		return nil, err
	}
	c, ok := cs[name]
	if !ok {
		return nil, fmt.Errorf("store: unknown collection %q", name)
	}
	return c, nil
}

// collections returns every collection by name, deciding the layout on
// the first call that reaches the server (one that fails is tried again
// by the next call).
func (s *Store) collections(ctx context.Context) (map[string]*mongo.Collection, error) {
	if m := s.colls.Load(); m != nil {
		return *m, nil
	}
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if m := s.colls.Load(); m != nil {
		return *m, nil
	}
	l := s.layout
	if l == LayoutAuto {
		var err error
		if l, err = s.detectLayout(ctx); err != nil {
			return nil, fmt.Errorf("store layout: %w", err)
		}
	}
	m := make(map[string]*mongo.Collection, len(allCollections))
	for _, c := range allCollections {
		if l == LayoutPerCollection {
			m[c] = s.client.Database(collectionDatabase(s.db.Name(), c)).Collection(c)
		} else {
			m[c] = s.db.Collection(c)
		}
	}
	s.resolved = l
	s.colls.Store(&m)
	return m, nil
}

// detectLayout decides LayoutAuto: single on MongoDB; on FerretDB,
// single if the database named at Open holds a collection of the store
// (written before this layout existed), per-collection otherwise. A
// FerretDB store with collections in both places is refused: it was
// written by workers that disagreed (an older version started on an
// empty store beside a newer one), and neither half is the whole store.
func (s *Store) detectLayout(ctx context.Context) (Layout, error) {
	var info bson.M
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return LayoutAuto, fmt.Errorf("buildInfo: %w", err)
	}
	if _, ferret := info["ferretdbVersion"]; !ferret {
		return LayoutSingle, nil
	}
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return LayoutAuto, fmt.Errorf("list collections: %w", err)
	}
	single := slices.ContainsFunc(names, func(n string) bool { return slices.Contains(allCollections, n) })
	dbs, err := s.client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return LayoutAuto, fmt.Errorf("list databases: %w", err)
	}
	split := slices.ContainsFunc(allCollections, func(c string) bool {
		return slices.Contains(dbs, collectionDatabase(s.db.Name(), c))
	})
	switch {
	case single && split:
		return LayoutAuto, fmt.Errorf("FerretDB holds this store's collections both in database %q and in databases named %q: it was written in both layouts; see the README (FerretDB: a database per collection)",
			s.db.Name(), collectionDatabase(s.db.Name(), "<collection>"))
	case single:
		return LayoutSingle, nil
	}
	return LayoutPerCollection, nil
}
