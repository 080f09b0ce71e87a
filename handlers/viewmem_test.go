package handlers

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// checkRecs compares rs with the model (slot -> payload) and checks the
// arena's accounting: each chunk's live bytes are those of the records
// that point into it, and an unmapped chunk holds none.
func checkRecs(t *testing.T, rs *recs, model map[uint32][]byte) {
	t.Helper()
	if rs.live != len(model) {
		t.Fatalf("recs holds %d records, model %d", rs.live, len(model))
	}
	live := make([]int, len(rs.chunks))
	seen := 0
	rs.each(func(slot uint32, p []byte) bool {
		want, ok := model[slot]
		if !ok || !bytes.Equal(p, want) {
			t.Fatalf("slot %d holds %q, model %q (%v)", slot, p, want, ok)
		}
		c, _ := splitref(rs.ref(slot))
		live[c] += recHeader + len(p)
		seen++
		return true
	})
	if seen != len(model) {
		t.Fatalf("each gave %d records, model has %d", seen, len(model))
	}
	for c, ch := range rs.chunks {
		if ch.live != live[c] {
			t.Fatalf("chunk %d counts %d live bytes, its records are %d", c, ch.live, live[c])
		}
		if ch.b == nil && live[c] != 0 {
			t.Fatalf("chunk %d is unmapped with %d live bytes", c, live[c])
		}
	}
}

// TestRecsModel: random adds, replaces and removes of records of every
// size (one larger than a chunk) against a map; the arena's accounting
// holds throughout, mostly dead chunks are unmapped, and releasing gives
// back every mapped byte.
func TestRecsModel(t *testing.T) {
	var o offheap
	rs := newRecs(&o)
	model := map[uint32][]byte{}
	rnd := rand.New(rand.NewPCG(1, 2))
	payload := func(i int) []byte {
		n := rnd.IntN(400)
		if i%5000 == 4999 {
			n = chunkSize + 100 // a record of its own chunk's size
		}
		return bytes.Repeat([]byte{byte(i)}, n)
	}
	var held []uint32 // the model's slots, in no order
	for i := range 60000 {
		switch op := rnd.IntN(10); {
		case op < 5 || len(held) == 0:
			p := payload(i)
			s := rs.add(p)
			if _, taken := model[s]; taken {
				t.Fatalf("add gave slot %d, which holds a record", s)
			}
			model[s] = p
			held = append(held, s)
		case op < 8:
			s := held[rnd.IntN(len(held))]
			p := payload(i)
			rs.replace(s, p)
			model[s] = p
		default:
			j := rnd.IntN(len(held))
			s := held[j]
			held[j] = held[len(held)-1]
			held = held[:len(held)-1]
			rs.remove(s)
			delete(model, s)
		}
		if i%5000 == 0 {
			checkRecs(t, &rs, model)
		}
	}
	checkRecs(t, &rs, model)
	peak := o.mapped
	// Remove nine in ten: mostly dead chunks are moved and unmapped.
	for i, s := range held {
		if i%10 != 0 {
			rs.remove(s)
			delete(model, s)
		}
	}
	checkRecs(t, &rs, model)
	var liveBytes int
	for _, p := range model {
		liveBytes += recHeader + len(p)
	}
	arena := o.mapped - len(rs.slots)
	if arena > 4*liveBytes+2*chunkSize {
		t.Fatalf("after removing nine in ten, %d bytes of chunks are mapped for %d live (peak %d)", arena, liveBytes, peak)
	}
	t.Logf("mapped %d at the peak, %d after removing nine in ten (%d live)", peak, o.mapped, liveBytes)
	rs.release()
	if o.mapped != 0 {
		t.Fatalf("release left %d bytes mapped", o.mapped)
	}
}

// TestIndexModel: random adds and deletes under few hashes (so entries
// collide and chains cross tombstones) and many, against a map; growth,
// tombstone clean-ups and shrinking keep every entry findable.
func TestIndexModel(t *testing.T) {
	var o offheap
	x := index{o: &o}
	type entry struct {
		h    uint64
		slot uint32
	}
	model := map[entry]bool{}
	rnd := rand.New(rand.NewPCG(3, 4))
	hashOf := func() uint64 {
		if rnd.IntN(50) == 0 {
			return uint64(rnd.IntN(8)) * 1024 // few hashes, same bucket modulo every size
		}
		return rnd.Uint64()
	}
	check := func() {
		t.Helper()
		if x.n != len(model) {
			t.Fatalf("index holds %d entries, model %d", x.n, len(model))
		}
		byHash := map[uint64][]uint32{}
		for e := range model {
			byHash[e.h] = append(byHash[e.h], e.slot)
		}
		for h, want := range byHash {
			var got []uint32 // every slot under h: find offers each to match
			x.find(h, func(s uint32) bool { got = append(got, s); return false })
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("hash %#x: index gives %v, model %v", h, got, want)
			}
			for _, s := range want {
				if f, ok := x.find(h, func(c uint32) bool { return c == s }); !ok || f != s {
					t.Fatalf("hash %#x: find slot %d gave %d, %v", h, s, f, ok)
				}
			}
		}
	}
	var keys []entry
	next := uint32(0)
	for i := range 100000 {
		if rnd.IntN(3) != 0 || len(keys) == 0 {
			e := entry{hashOf(), next}
			next++
			x.add(e.h, e.slot)
			model[e] = true
			keys = append(keys, e)
		} else {
			j := rnd.IntN(len(keys))
			e := keys[j]
			keys[j] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			if !x.del(e.h, e.slot) {
				t.Fatalf("del %v: not found", e)
			}
			delete(model, e)
			if x.del(e.h, e.slot) {
				t.Fatalf("del %v twice: found again", e)
			}
		}
		if i%10000 == 0 {
			check()
		}
	}
	check()
	grown := x.size
	for _, e := range keys {
		x.del(e.h, e.slot)
		delete(model, e)
	}
	check()
	if x.size >= grown || x.size < minIndex {
		t.Fatalf("emptied, the index has %d entries of room (%d when full)", x.size, grown)
	}
	if _, ok := x.find(0, func(uint32) bool { return true }); ok {
		t.Fatal("an empty index finds an entry")
	}
	x.release()
	if o.mapped != 0 {
		t.Fatalf("release left %d bytes mapped", o.mapped)
	}
}

// TestViewReleasesMemory: a view's records and indexes, made, changed,
// swept, are every byte it has mapped; releasing unmaps them all.
func TestViewReleasesMemory(t *testing.T) {
	v := NewView(func(id string) string { return "token-of-" + id })
	now := time.Now()
	for i := range 3000 {
		u, err := domain.NewJITUser(fmt.Sprintf("user%d@example.com", i), "", now)
		if err != nil {
			t.Fatal(err)
		}
		v.PutUser(u, false)
		s := domain.Session{SessionID: fmt.Sprint("s-", i), UserID: u.UserID, ExpiresAt: now.Add(time.Duration(i%2) * time.Hour)}
		v.PutSession(domain.SessionState{Session: s, Revision: 1})
		v.PutSession(domain.SessionState{Session: s, Revision: 2})
	}
	if n := v.Sweep(now.Add(time.Minute)); n != 1500 {
		t.Fatalf("swept %d sessions, want 1500", n)
	}
	if v.OffHeapBytes() == 0 {
		t.Fatal("a view of 3,000 users maps nothing")
	}
	v.viewData.release()
	if v.o.mapped != 0 {
		t.Fatalf("release left %d bytes mapped", v.o.mapped)
	}
}

// TestRecsReclaimChecksTheChunkItFilled: a reclaim whose moves fill the
// chunk being filled starts another; the one it filled, mostly dead copies
// of a record changed again and again, is reclaimed in turn instead of
// staying mapped for the few records in it.
func TestRecsReclaimChecksTheChunkItFilled(t *testing.T) {
	var o offheap
	rs := newRecs(&o)
	model := map[uint32][]byte{}
	rec := func(i, n int) []byte { return bytes.Repeat([]byte{byte(i)}, n) }
	// Chunk 0: 4,000 records of 200 bytes; then chunk 1 is being filled.
	var first []uint32
	for i := range 4000 {
		s := rs.add(rec(i, 192))
		model[s] = rec(i, 192)
		first = append(first, s)
	}
	for rs.cur == 0 {
		s := rs.add(rec(1, 192))
		model[s] = rec(1, 192)
	}
	if rs.cur != 1 {
		t.Fatalf("chunk %d is being filled, want 1", rs.cur)
	}
	// Chunk 1 fills with dead copies of one record, leaving 64 KiB free.
	hot := rs.add(rec(2, 192))
	model[hot] = rec(2, 192)
	for len(rs.chunks[1].b)-rs.chunks[1].used > 64<<10 {
		rs.replace(hot, rec(3, 192))
		model[hot] = rec(3, 192)
	}
	// Chunk 0 falls under a quarter live: its records (about 256 KiB) move
	// to chunk 1, which they overflow.
	for _, s := range first {
		rs.remove(s)
		delete(model, s)
		if rs.chunks[0].b == nil {
			break // reclaimed: the records left are those it moved
		}
	}
	if rs.chunks[0].b != nil {
		t.Fatal("chunk 0, under a quarter live, is still mapped")
	}
	if rs.cur == 1 {
		t.Fatal("the moves did not fill chunk 1")
	}
	if ch := rs.chunks[1]; ch.b != nil && 4*ch.live < ch.used {
		t.Fatalf("chunk 1, filled by the moves, stays mapped with %d of %d bytes live", ch.live, ch.used)
	}
	checkRecs(t, &rs, model)
}
