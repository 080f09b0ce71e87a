package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	// LayoutAuto decides on first use (decideLayout) and records the
	// decision in the store: LayoutPerCollection for a new store on
	// FerretDB, LayoutSingle for one on MongoDB and for a store written
	// before the layouts existed, which keeps its layout.
	LayoutAuto Layout = iota
	// LayoutSingle keeps every collection in the database named at Open.
	LayoutSingle
	// LayoutPerCollection keeps each collection in a database of its
	// own, named <database>-<collection>.
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

// collLayout, in the database named at Open, holds the layout decided for
// the store (one document, layoutID): inserted by the first client to
// decide, read by every later one, so all decide the same, and a store
// copied to another server (mongodump, mongorestore) keeps its layout.
const (
	collLayout = "store_layout"
	layoutID   = "layout"
)

type layoutModel struct {
	ID        string    `bson:"_id"`
	Layout    string    `bson:"layout"`
	CreatedAt time.Time `bson:"created_at"`
}

// layoutSep joins the store's name and a collection's into the name of
// the collection's database. No collection name holds it, so two stores'
// databases can share a name only if one store's name is another's
// followed by layoutSep and a collection's name (see decideLayout).
const layoutSep = "-"

// maxDatabaseName is the longest database name FerretDB takes (MongoDB's
// limit is 64 bytes).
const maxDatabaseName = 63

// collectionDatabase is the database that holds collection coll of the
// store named name under the per-collection layout.
func collectionDatabase(name, coll string) string { return name + layoutSep + coll }

// splitFits reports whether name can have the per-collection layout:
// every <name>-<collection> is a name FerretDB takes.
func splitFits(name string) bool {
	for _, c := range allCollections {
		if len(collectionDatabase(name, c)) > maxDatabaseName {
			return false
		}
	}
	return true
}

// ownerOf returns, for a name <p>-<collection>, the store p whose
// collection that database would hold in the per-collection layout.
func ownerOf(name string) (string, bool) {
	for _, c := range allCollections {
		if p, ok := strings.CutSuffix(name, layoutSep+c); ok && p != "" {
			return p, true
		}
	}
	return "", false
}

// Layout returns the layout in use, deciding it first if need be.
func (s *Store) Layout(ctx context.Context) (Layout, error) {
	if _, err := s.collections(ctx); err != nil {
		return LayoutAuto, err
	}
	return s.resolved, nil
}

// Describe says where the store keeps its collections, once the layout
// is decided ("undecided" before): for the worker's start-up log.
func (s *Store) Describe() string {
	if s.colls.Load() == nil {
		return "undecided"
	}
	if s.resolved == LayoutPerCollection {
		return fmt.Sprintf("per-collection: databases %s", collectionDatabase(s.db.Name(), "<collection>"))
	}
	return fmt.Sprintf("single: database %s", s.db.Name())
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
		if l, err = s.decideLayout(ctx); err != nil {
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

// decideLayout decides LayoutAuto. What the store holds comes first:
//
//   - a name <p>-<collection> where store p has the per-collection
//     layout: refused, that database holds p's collection; and a name
//     whose databases <name>-<collection> include another store's:
//     refused, the per-collection layout would write into it;
//   - its collections in the database named at Open and in databases of
//     their own at once: refused (workers that disagreed wrote it, or a
//     worker of a version before the layouts wrote beside this one; neither
//     half is the whole store);
//   - the layout recorded in collLayout, checked against what is there;
//   - no record, and collections in the database named at Open: a store of
//     a version before the layouts, single;
//   - no record, and collections in databases <name>-<collection>: refused,
//     they are not this store's (a client of this version records the
//     layout before it writes anything; they belong to a store named
//     <name>-<collection> that the per-collection layout would share);
//   - nothing anywhere (a new store): per-collection on FerretDB when the
//     names fit, single otherwise (MongoDB).
//
// The decision is then recorded, under a unique key: a client that loses
// the insert to another takes the other's. It costs a few commands on
// small collections (never listDatabases, which FerretDB answers by
// reading every file it has).
func (s *Store) decideLayout(ctx context.Context) (Layout, error) {
	var info bson.M
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return LayoutAuto, fmt.Errorf("buildInfo: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	name := s.db.Name()
	fits := splitFits(name)
	if p, ok := ownerOf(name); ok {
		var m layoutModel
		found, err := findByID(ctx, s.client.Database(p).Collection(collLayout), layoutID, &m)
		if err != nil {
			return LayoutAuto, fmt.Errorf("read %s of %s: %w", collLayout, p, err)
		}
		if found && m.Layout == LayoutPerCollection.String() {
			return LayoutAuto, fmt.Errorf("database %q is where the store %q keeps a collection (a database per collection); choose another TAT_MONGODB_DATABASE", name, p)
		}
	}
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return LayoutAuto, fmt.Errorf("list collections: %w", err)
	}
	single := slices.ContainsFunc(names, func(n string) bool { return slices.Contains(allCollections, n) })
	split := false
	if fits {
		for _, c := range allCollections {
			db := collectionDatabase(name, c)
			own, err := s.client.Database(db).ListCollectionNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: bson.A{c, collLayout}}}}})
			if err != nil {
				return LayoutAuto, fmt.Errorf("list collections of %s: %w", db, err)
			}
			if slices.Contains(own, collLayout) {
				return LayoutAuto, fmt.Errorf("database %q, where this store would keep its collection %s (a database per collection), is another store's; choose another TAT_MONGODB_DATABASE", db, c)
			}
			split = split || len(own) > 0
		}
	}
	if single && split {
		return LayoutAuto, fmt.Errorf("the store's collections are both in database %q and in databases of their own (%q): it was written in both layouts; see the README (FerretDB: a database per collection)",
			name, collectionDatabase(name, "<collection>"))
	}
	rec := s.db.Collection(collLayout)
	var m layoutModel
	found, err := findByID(ctx, rec, layoutID, &m)
	if err != nil {
		return LayoutAuto, fmt.Errorf("read %s: %w", collLayout, err)
	}
	var l Layout
	switch {
	case found:
		return recordedLayout(m, single, split)
	case single:
		l = LayoutSingle
	case split:
		return LayoutAuto, fmt.Errorf("databases named %q hold collections of the store's names, but %q records no layout: they are not this store's (another store's, named like that?); choose another TAT_MONGODB_DATABASE",
			collectionDatabase(name, "<collection>"), name)
	case ferret && fits:
		l = LayoutPerCollection
	default:
		l = LayoutSingle
	}
	err = insert(ctx, rec, layoutModel{ID: layoutID, Layout: l.String(), CreatedAt: time.Now().UTC()})
	if errors.Is(err, errConflict) {
		// Another client decided first: its decision is the store's.
		if found, err = findByID(ctx, rec, layoutID, &m); err != nil || !found {
			return LayoutAuto, fmt.Errorf("read %s: %v", collLayout, err)
		}
		return recordedLayout(m, single, split)
	}
	if err != nil {
		return LayoutAuto, fmt.Errorf("record the layout: %w", err)
	}
	return l, nil
}

// recordedLayout is the layout m records, if the collections found
// (single: in the database named at Open; split: in their own) agree.
func recordedLayout(m layoutModel, single, split bool) (Layout, error) {
	switch {
	case m.Layout == LayoutSingle.String() && !split:
		return LayoutSingle, nil
	case m.Layout == LayoutPerCollection.String() && !single:
		return LayoutPerCollection, nil
	case m.Layout != LayoutSingle.String() && m.Layout != LayoutPerCollection.String():
		return LayoutAuto, fmt.Errorf("%s records an unknown layout %q", collLayout, m.Layout)
	}
	return LayoutAuto, fmt.Errorf("%s records the %s layout, but the store's collections are elsewhere: a worker of a version before the layouts wrote it; see the README (FerretDB: a database per collection)",
		collLayout, m.Layout)
}
