package mongostore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
)

// Tests from a review of the per-collection layout.

// TestLayoutLongStoreName: FerretDB takes database names of up to 63
// characters. For a store name of 45, <name>-outcomes_published would be
// 64: such a store keeps the single layout, and everything works (found by
// review: with the per-collection layout, reading an unpublished outcome,
// every sweep, and from 46 characters every session write failed).
func TestLayoutLongStoreName(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	name := fmt.Sprintf("l%d", time.Now().UnixNano())
	name += strings.Repeat("x", 45-len(name))
	s := openNamed(t, name)
	if err := s.Setup(ctx); err != nil {
		t.Fatalf("Setup of a store named with 45 characters: %v (refused at start would at least be honest)", err)
	}
	l, _ := s.Layout(ctx)
	if l != mongostore.LayoutSingle {
		t.Errorf("layout of a store named with 45 characters: %v; want single", l)
	}
	o := layoutOutcome("attest:crashed-before-publish")
	if _, _, err := s.Record(ctx, o); err != nil {
		t.Fatalf("first Record: %v", err)
	}
	// The redelivery after a crash: the outcome is there, its event was
	// never published; the worker reads it to publish it.
	if _, ok, err := s.Get(ctx, o.Key); err != nil || !ok {
		t.Errorf("layout %v: Get of a stored, unpublished outcome: ok=%v err=%v (the outcome event is never published)", l, ok, err)
	}
	if _, inserted, err := s.Record(ctx, o); err != nil || inserted {
		t.Errorf("layout %v: Record of a redelivery: inserted=%v err=%v", l, inserted, err)
	}
	if _, err := s.Sweep(ctx, time.Now(), time.Hour, time.Hour); err != nil {
		t.Errorf("layout %v: Sweep: %v", l, err)
	}
}

// TestLayoutRefusesAnotherStoresDatabase: a store written before the
// layouts, named x-users, keeps its users in database x-users, collection
// users, which is where a new store x would keep its users in the
// per-collection layout. Store x must not read them (another store's
// users, profiles, trusted issuers): it finds collections of its names
// in its per-collection databases but no layout record of its own, and
// refuses to start, with the reason.
func TestLayoutRefusesAnotherStoresDatabase(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	x := fmt.Sprintf("share%d", time.Now().UnixNano())
	other := openNamed(t, x+"-users", mongostore.WithLayout(mongostore.LayoutSingle))
	if err := other.InsertUser(ctx, domain.User{UserSpec: domain.UserSpec{UserID: "user-of-x-users"}, Version: 1, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s := openNamed(t, x)
	if err := s.Setup(ctx); err == nil || !strings.Contains(err.Error(), "records no layout") {
		t.Fatalf("Setup of store %s beside store %s-users: %v; want refused", x, x, err)
	}
	if users, err := s.LoadUsers(ctx); err == nil {
		t.Fatalf("store %s loads %d users of store %s-users", x, len(users), x)
	}
}

// TestLayoutNewStoresNamedAlikeRefuseTheNewcomer: two new stores on one
// FerretDB, x and x-users, where x's per-collection layout would keep its
// users in x-users, the other's database. Whichever starts second is
// refused at its first start, with the reason; the first keeps working
// and restarts as before.
func TestLayoutNewStoresNamedAlikeRefuseTheNewcomer(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	for _, xFirst := range []bool{true, false} {
		x := fmt.Sprintf("pre%d", time.Now().UnixNano())
		first, second := x+"-users", x
		if xFirst {
			first, second = x, x+"-users"
		}
		a := openNamed(t, first)
		if err := a.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.InsertUser(ctx, domain.User{UserSpec: domain.UserSpec{UserID: "u-" + first}, Version: 1, UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		b := openNamed(t, second)
		if err := b.Setup(ctx); err == nil || !strings.Contains(err.Error(), "store") {
			t.Fatalf("store %s started after store %s: %v; want refused", second, first, err)
		}
		again := openNamed(t, first)
		if err := again.Setup(ctx); err != nil {
			t.Fatalf("store %s restarted: %v", first, err)
		}
		users, err := again.LoadUsers(ctx)
		if err != nil || len(users) != 1 || users[0].User.UserID != "u-"+first {
			t.Fatalf("store %s restarted loads %v (%v)", first, users, err)
		}
	}
}

// TestLayoutConcurrentFirstUse: many first uses at once, on
// a store without Setup, through batched inserts, lookups and Layout, all
// see one layout and each other's writes (run with -race).
func TestLayoutConcurrentFirstUse(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	name := fmt.Sprintf("conc%d", time.Now().UnixNano())
	s := openNamed(t, name)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("attest:%d", i)
			if _, _, err := s.Record(ctx, layoutOutcome(k)); err != nil {
				errs <- err
			}
			if _, _, err := s.Claim(ctx, "p", fmt.Sprint("jti", i), k, time.Now().Add(time.Hour), time.Now()); err != nil {
				errs <- err
			}
			if l, err := s.Layout(ctx); err != nil || l != mongostore.LayoutPerCollection {
				errs <- fmt.Errorf("layout %v %v", l, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	other := openNamed(t, name)
	for i := range 32 {
		if _, ok, err := other.Get(ctx, fmt.Sprintf("attest:%d", i)); err != nil || !ok {
			t.Errorf("outcome %d: %v %v", i, ok, err)
		}
	}
}

// TestLayoutCancelledDetectionNotCached: a first use with a
// cancelled context fails and decides nothing; the next one decides.
func TestLayoutCancelledDetectionNotCached(t *testing.T) {
	openStore(t)
	s := openNamed(t, fmt.Sprintf("cancel%d", time.Now().UnixNano()))
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Record(cctx, layoutOutcome("attest:c")); err == nil {
		t.Fatal("Record with a cancelled context succeeded")
	}
	if _, err := s.Layout(cctx); err == nil {
		t.Fatal("layout decided with a cancelled context")
	}
	if l, err := s.Layout(context.Background()); err != nil || l != mongostore.LayoutPerCollection {
		t.Fatalf("layout after: %v %v", l, err)
	}
}

// TestLayoutPerCollectionStoreMovedToMongoDB: a FerretDB store in the
// per-collection layout moved to MongoDB (mongodump, mongorestore, names
// kept) keeps its layout, recorded in the store: its outcomes are found (a
// redelivery is not decided again) and its replay claims too (a replayed
// token is refused). Before the record, the server alone decided, and
// MongoDB read such a store as empty. The MongoDB here is the test FerretDB
// behind a proxy that takes ferretdbVersion out of its replies.
func TestLayoutPerCollectionStoreMovedToMongoDB(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	name := fmt.Sprintf("moved%d", time.Now().UnixNano())
	fs := openNamed(t, name)
	if err := fs.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	if _, _, err := fs.Record(ctx, layoutOutcome("attest:r1")); err != nil {
		t.Fatal(err)
	}
	if _, ins, err := fs.Claim(ctx, "p", "jti-1", "attest:r1", exp, time.Now()); err != nil || !ins {
		t.Fatalf("claim: %v %v", ins, err)
	}
	uri := "mongodb://" + notFerretProxy(t) + "/"
	var info bson.M
	if err := rawClientAt(t, uri).Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if _, ok := info["ferretdbVersion"]; ok || info["version"] == nil {
		t.Fatalf("through the proxy buildInfo says %v; want a server that is not FerretDB", info)
	}
	ms, err := mongostore.Open(ctx, uri, name)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close(ctx)
	if err := ms.Setup(ctx); err != nil {
		t.Fatalf("Setup of the moved store: %v", err)
	}
	l, err := ms.Layout(ctx)
	if err != nil || l != mongostore.LayoutPerCollection {
		t.Fatalf("the moved store's layout: %v (%v); want its recorded per-collection layout", l, err)
	}
	if _, ok, err := ms.Get(ctx, "attest:r1"); err != nil || !ok {
		t.Errorf("layout %v: the store's outcome attest:r1 not found (ok=%v err=%v): the request is decided again", l, ok, err)
	}
	if holder, ins, err := ms.Claim(ctx, "p", "jti-1", "attest:r2", exp, time.Now()); err != nil || ins {
		t.Errorf("layout %v: token jti-1, claimed by attest:r1, claimed again by attest:r2 (holder %q, inserted %v, %v): replay accepted", l, holder, ins, err)
	}
}

// TestLayoutDecisionListsNoDatabases: deciding the layout never sends
// listDatabases, which FerretDB 1.24 answers by computing the size of
// every database on the server, reading every page of every file (found
// by review: 1.4-1.6 s at 300 MB here, so a large store would have
// outgrown the worker's start-up deadline). It looks at the store's own
// databases by name instead.
func TestLayoutDecisionListsNoDatabases(t *testing.T) {
	openStore(t)
	ctx := context.Background()
	addr, commands := recordingProxy(t)
	for _, name := range []string{fmt.Sprintf("nolist%d", time.Now().UnixNano()), fmt.Sprintf("nolistlegacy%d", time.Now().UnixNano())} {
		if strings.HasPrefix(name, "nolistlegacy") {
			legacy := openNamed(t, name, mongostore.WithLayout(mongostore.LayoutSingle))
			if _, _, err := legacy.Record(ctx, layoutOutcome("attest:old")); err != nil {
				t.Fatal(err)
			}
		}
		s, err := mongostore.Open(ctx, "mongodb://"+addr+"/", name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		_ = s.Close(ctx)
	}
	cmds := commands()
	if !slices.Contains(cmds, "buildInfo") || !slices.Contains(cmds, "listCollections") {
		t.Fatalf("the proxy saw %v; want the layout's commands", cmds)
	}
	if slices.Contains(cmds, "listDatabases") {
		t.Fatalf("deciding the layout sent listDatabases (commands: %v)", cmds)
	}
}

// wireProxy forwards the MongoDB wire protocol between a client and the
// test FerretDB, handing the first document of each OP_MSG to onRequest
// (client to server) and to onReply (server to client), which may return
// a replacement. It returns the address to connect to.
func wireProxy(t *testing.T, onRequest func(bson.Raw), onReply func(bson.Raw) bson.Raw) string {
	t.Helper()
	target := strings.TrimSuffix(strings.TrimPrefix(ferret.URI(), "mongodb://"), "/")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go pipeOpMsgs(c, s, func(doc bson.Raw) bson.Raw { onRequest(doc); return nil })
			go pipeOpMsgs(s, c, onReply)
		}
	}()
	return ln.Addr().String()
}

// pipeOpMsgs copies wire messages from src to dst until either fails,
// letting edit see (and replace, when it returns a document) the first
// document of each OP_MSG.
func pipeOpMsgs(src, dst net.Conn, edit func(bson.Raw) bson.Raw) {
	defer src.Close()
	defer dst.Close()
	for {
		var hdr [16]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.LittleEndian.Uint32(hdr[0:4])-16)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		if binary.LittleEndian.Uint32(hdr[12:16]) == 2013 && len(body) > 9 && body[4] == 0 {
			flags := binary.LittleEndian.Uint32(body[0:4])
			if flags&1 != 0 { // a checksum: dropped, the body may change
				body = body[:len(body)-4]
				binary.LittleEndian.PutUint32(body[0:4], flags&^1)
			}
			dl := binary.LittleEndian.Uint32(body[5:9])
			if int(5+dl) <= len(body) {
				if nd := edit(bson.Raw(body[5 : 5+dl])); nd != nil {
					body = append(append(append([]byte{}, body[:5]...), nd...), body[5+dl:]...)
				}
			}
			binary.LittleEndian.PutUint32(hdr[0:4], uint32(16+len(body)))
		}
		if _, err := dst.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// notFerretProxy is a wireProxy that removes ferretdbVersion from the
// server's replies: the server looks like MongoDB to the store.
func notFerretProxy(t *testing.T) string {
	return wireProxy(t, func(bson.Raw) {}, func(doc bson.Raw) bson.Raw {
		if _, err := doc.LookupErr("ferretdbVersion"); err != nil {
			return nil
		}
		var d bson.D
		if err := bson.Unmarshal(doc, &d); err != nil {
			return nil
		}
		d = slices.DeleteFunc(d, func(e bson.E) bool { return e.Key == "ferretdbVersion" })
		nd, _ := bson.Marshal(d)
		return nd
	})
}

// recordingProxy is a wireProxy that records the name of every command
// the client sends (the first key of each OP_MSG body).
func recordingProxy(t *testing.T) (string, func() []string) {
	var mu sync.Mutex
	var seen []string
	addr := wireProxy(t, func(doc bson.Raw) {
		if elems, err := doc.Elements(); err == nil && len(elems) > 0 {
			mu.Lock()
			seen = append(seen, elems[0].Key())
			mu.Unlock()
		}
	}, func(bson.Raw) bson.Raw { return nil })
	return addr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}
