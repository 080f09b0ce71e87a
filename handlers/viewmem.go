package handlers

import (
	"encoding/binary"
	"os"
)

// The view's users and sessions live outside the Go heap. Every worker
// holds every user and live session, so the view is most of a loaded
// worker's live heap; in the Go heap it would also set how far the heap
// grows between collections (GOGC: twice the live heap by default), so
// each byte of it would cost about two of resident memory, and the
// collector would mark every record on every cycle. Held in memory mapped
// outside the heap, a record costs its bytes once and the collector never
// sees it (docs/decisions/0006-view-outside-the-go-heap.md).
//
// Four structures, all changed only under the view's write lock:
//   - recs: records of one kind, each in a numbered slot that stays its own
//     for as long as the record is held; a slot names the record's current
//     bytes in an arena of chunks;
//   - the arena's chunks: records are appended; a changed record is
//     appended again and its old bytes are dead; a chunk whose live bytes
//     fall under a quarter of what it holds has its live records moved to
//     the chunk being filled, and is unmapped;
//   - index: an open-addressing hash table from a key's hash to slots,
//     verified against the record (several keys may share a hash);
//   - chain: links of slots into lists (a user's sessions, from the one
//     the by-user index names).
//
// Bytes read from a record alias the arena: they are copied before the
// lock is released, and never held across a change to the same recs.

var le = binary.LittleEndian

// offheap counts what a view has mapped.
type offheap struct{ mapped int }

var pageSize = os.Getpagesize()

func (o *offheap) get(n int) []byte {
	n = (n + pageSize - 1) / pageSize * pageSize
	b := mapBytes(n)
	o.mapped += n
	return b
}

func (o *offheap) put(b []byte) {
	if len(b) == 0 {
		return
	}
	o.mapped -= len(b)
	unmapBytes(b)
}

// chunkSize is an arena chunk's size; a record larger than half of that
// gets a chunk of its own size (see room).
const chunkSize = 1 << 20

// recHeader is a record's header in the arena: its payload length and its
// slot, 4 bytes each.
const recHeader = 8

type chunk struct {
	b    []byte // nil once unmapped
	used int    // bytes appended
	live int    // bytes of records still current
}

// recs holds records of one kind.
type recs struct {
	o      *offheap
	slots  []byte   // 8 bytes per slot: the record's ref; 0 for a free slot
	nslots int      // slots handed out (free ones included)
	free   []uint32 // free slots
	live   int      // records held
	chunks []chunk
	spare  []int // indexes of unmapped chunks, for reuse
	cur    int   // the chunk being filled; -1 before the first
}

func newRecs(o *offheap) recs { return recs{o: o, cur: -1} }

// A ref names a record's bytes: the chunk's index + 1 in the high 32 bits,
// the offset in the low 32.
func mkref(c, off int) uint64 { return uint64(c+1)<<32 | uint64(off) }

func splitref(r uint64) (c, off int) { return int(r>>32) - 1, int(uint32(r)) }

func (rs *recs) ref(slot uint32) uint64 { return le.Uint64(rs.slots[8*int(slot):]) }

func (rs *recs) setRef(slot uint32, r uint64) { le.PutUint64(rs.slots[8*int(slot):], r) }

// get returns the payload of the record in slot, aliasing the arena.
func (rs *recs) get(slot uint32) []byte {
	c, off := splitref(rs.ref(slot))
	b := rs.chunks[c].b[off:]
	n := int(le.Uint32(b))
	return b[recHeader : recHeader+n]
}

// add stores a new record and returns its slot.
func (rs *recs) add(p []byte) uint32 {
	var slot uint32
	if n := len(rs.free); n > 0 {
		slot, rs.free = rs.free[n-1], rs.free[:n-1]
	} else {
		if 8*(rs.nslots+1) > len(rs.slots) {
			nb := rs.o.get(max(2*len(rs.slots), pageSize))
			copy(nb, rs.slots)
			rs.o.put(rs.slots)
			rs.slots = nb
		}
		slot = uint32(rs.nslots)
		rs.nslots++
	}
	rs.setRef(slot, rs.write(slot, p))
	rs.live++
	return slot
}

// replace stores p as the record in slot, which holds one.
//
// The old bytes are counted dead, and the slot names none, before the new
// record is written: writing may roll the current chunk over and reclaim
// it, and the old bytes are most often there (a record changed again and
// again fills the chunk with its own dead copies). Were the slot still
// naming them, the reclaim would move them as live and unmap (or reuse)
// their chunk, and dropping them after would read what is no longer
// theirs.
func (rs *recs) replace(slot uint32, p []byte) {
	c := rs.kill(rs.ref(slot))
	rs.setRef(slot, 0)
	rs.setRef(slot, rs.write(slot, p))
	if c != rs.cur {
		rs.reclaim(c)
	}
}

// remove forgets the record in slot and frees the slot.
func (rs *recs) remove(slot uint32) {
	old := rs.ref(slot)
	rs.setRef(slot, 0)
	rs.free = append(rs.free, slot)
	rs.live--
	rs.drop(old)
}

// each calls f with every record held, in slot order, until f returns
// false. f must not change rs.
func (rs *recs) each(f func(slot uint32, p []byte) bool) {
	for s := range rs.nslots {
		if rs.ref(uint32(s)) != 0 && !f(uint32(s), rs.get(uint32(s))) {
			return
		}
	}
}

// write appends a record for slot and returns its ref.
func (rs *recs) write(slot uint32, p []byte) uint64 {
	size := recHeader + len(p)
	c := rs.room(size)
	ch := &rs.chunks[c]
	off := ch.used
	le.PutUint32(ch.b[off:], uint32(len(p)))
	le.PutUint32(ch.b[off+4:], slot)
	copy(ch.b[off+recHeader:], p)
	ch.used += size
	ch.live += size
	return mkref(c, off)
}

// room returns a chunk with size bytes free: the current one, or a new
// one. The chunk it replaces is reclaimed if it is mostly dead.
//
// A record larger than half a chunk gets a chunk of its own, and the
// current one stays current: rolling it over would move what is live in
// it to a chunk mapped for the large record, which the record might then
// not fit, leaving that chunk mapped for the few records moved (for as
// long as they live, one more at each large record).
func (rs *recs) room(size int) int {
	if rs.fits(size) {
		return rs.cur
	}
	if size > chunkSize/2 {
		return rs.mapChunk(size)
	}
	prev := rs.cur
	rs.newChunk(size)
	if prev >= 0 {
		rs.reclaim(prev) // may fill the new chunk with prev's records
	}
	if !rs.fits(size) {
		rs.newChunk(size)
	}
	return rs.cur
}

func (rs *recs) fits(size int) bool {
	return rs.cur >= 0 && rs.chunks[rs.cur].used+size <= len(rs.chunks[rs.cur].b)
}

// newChunk maps a chunk for at least size bytes and makes it the current.
func (rs *recs) newChunk(size int) { rs.cur = rs.mapChunk(max(chunkSize, size)) }

// mapChunk maps a chunk of size bytes (to the page) and returns it.
func (rs *recs) mapChunk(size int) int {
	ch := chunk{b: rs.o.get(size)}
	if n := len(rs.spare); n > 0 {
		c := rs.spare[n-1]
		rs.spare = rs.spare[:n-1]
		rs.chunks[c] = ch
		return c
	}
	rs.chunks = append(rs.chunks, ch)
	return len(rs.chunks) - 1
}

// drop marks a record's old bytes dead and reclaims their chunk when it
// is mostly dead.
func (rs *recs) drop(r uint64) {
	if c := rs.kill(r); c != rs.cur {
		rs.reclaim(c)
	}
}

// kill marks a record's bytes dead and returns their chunk.
func (rs *recs) kill(r uint64) int {
	c, off := splitref(r)
	ch := &rs.chunks[c]
	ch.live -= recHeader + int(le.Uint32(ch.b[off:]))
	return c
}

// reclaim unmaps chunk c (not the current one) when nothing in it is
// live, and moves its records to the current chunk first when less than a
// quarter of it is. When the moves fill the current chunk and start
// another, the chunk they filled is checked in turn (it may have been
// mostly dead copies already): each chunk reclaimed is unmapped, so the
// work of one change is bounded by the chunks it frees.
func (rs *recs) reclaim(c int) {
	for work := []int{c}; len(work) > 0; {
		c, work = work[len(work)-1], work[:len(work)-1]
		ch := &rs.chunks[c]
		if ch.b == nil || c == rs.cur || ch.live > 0 && 4*ch.live >= ch.used {
			continue // unmapped already (and spare), being filled, or mostly live
		}
		for off := 0; ch.live > 0 && off < ch.used; {
			n := int(le.Uint32(ch.b[off:]))
			slot := le.Uint32(ch.b[off+4:])
			size := recHeader + n
			if int(slot) < rs.nslots && rs.ref(slot) == mkref(c, off) {
				// The move may start a new chunk, but never reuses c: c is
				// not spare until it is unmapped below.
				if filled := rs.cur; !rs.fits(size) {
					rs.newChunk(size)
					if filled >= 0 {
						work = append(work, filled)
					}
				}
				dst := &rs.chunks[rs.cur]
				copy(dst.b[dst.used:], ch.b[off:off+size])
				rs.setRef(slot, mkref(rs.cur, dst.used))
				dst.used += size
				dst.live += size
				ch = &rs.chunks[c] // the chunks slice may have grown
				ch.live -= size
			}
			off += size
		}
		rs.o.put(ch.b)
		*ch = chunk{}
		rs.spare = append(rs.spare, c)
	}
}

func (rs *recs) release() {
	for i := range rs.chunks {
		rs.o.put(rs.chunks[i].b)
		rs.chunks[i] = chunk{}
	}
	rs.o.put(rs.slots)
	rs.slots = nil
}

// index maps a key's hash to slots. An entry is 12 bytes: the hash, and
// the slot + 1 (0 for an empty entry, tomb for a removed one).
type index struct {
	o     *offheap
	b     []byte
	size  int // entries; a power of two, or 0
	n     int // entries in use
	tombs int
}

const (
	entrySize = 12
	tomb      = ^uint32(0)
	minIndex  = 256
)

func (x *index) at(i int) (h uint64, s uint32) {
	e := x.b[i*entrySize:]
	return le.Uint64(e), le.Uint32(e[8:])
}

func (x *index) set(i int, h uint64, s uint32) {
	e := x.b[i*entrySize:]
	le.PutUint64(e, h)
	le.PutUint32(e[8:], s)
}

// find returns the first slot under h that match accepts.
func (x *index) find(h uint64, match func(slot uint32) bool) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	mask := x.size - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		eh, s := x.at(i)
		if s == 0 {
			return 0, false
		}
		if s != tomb && eh == h && match(s-1) {
			return s - 1, true
		}
	}
}

// add puts slot under h (the caller keeps keys unique where they must be).
func (x *index) add(h uint64, slot uint32) {
	if 4*(x.n+x.tombs+1) > 3*x.size {
		size := max(x.size, minIndex)
		if 2*(x.n+1) > size {
			size *= 2
		}
		x.rehash(size)
	}
	mask := x.size - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		_, s := x.at(i)
		if s == 0 || s == tomb {
			if s == tomb {
				x.tombs--
			}
			x.set(i, h, slot+1)
			x.n++
			return
		}
	}
}

// del removes the entry of slot under h; it reports whether there was one.
func (x *index) del(h uint64, slot uint32) bool {
	if x.n == 0 {
		return false
	}
	mask := x.size - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		eh, s := x.at(i)
		if s == 0 {
			return false
		}
		if s == slot+1 && eh == h {
			x.set(i, 0, tomb)
			x.n--
			x.tombs++
			if x.size > minIndex && 8*x.n < x.size {
				x.rehash(max(x.size/4, minIndex))
			}
			return true
		}
	}
}

func (x *index) rehash(size int) {
	old, oldSize := x.b, x.size
	x.b, x.size, x.n, x.tombs = x.o.get(size*entrySize), size, 0, 0
	mask := size - 1
	for j := range oldSize {
		e := old[j*entrySize:]
		h, s := le.Uint64(e), le.Uint32(e[8:])
		if s == 0 || s == tomb {
			continue
		}
		for i := int(h) & mask; ; i = (i + 1) & mask {
			if _, t := x.at(i); t == 0 {
				x.set(i, h, s)
				x.n++
				break
			}
		}
	}
	x.o.put(old)
}

func (x *index) release() {
	x.o.put(x.b)
	x.b, x.size, x.n, x.tombs = nil, 0, 0, 0
}

// chain links records of one kind into lists (a user's sessions): 8 bytes
// per slot, the next and the previous record's slot + 1 (0 for none). With
// an index naming each list's first record, a record joins or leaves its
// list in constant time, however long the list is: an index entry per
// record under the list's key would put all of them under one hash, in one
// run of the table that each change walks.
type chain struct {
	o *offheap
	b []byte
}

const none = ^uint32(0)

// fit makes room for slots below n.
func (l *chain) fit(n int) {
	if 8*n <= len(l.b) {
		return
	}
	nb := l.o.get(max(2*len(l.b), 8*n, pageSize))
	copy(nb, l.b)
	l.o.put(l.b)
	l.b = nb
}

func (l *chain) next(s uint32) uint32 { return le.Uint32(l.b[8*int(s):]) - 1 }
func (l *chain) prev(s uint32) uint32 { return le.Uint32(l.b[8*int(s)+4:]) - 1 }

func (l *chain) setNext(s, n uint32) { le.PutUint32(l.b[8*int(s):], n+1) }
func (l *chain) setPrev(s, p uint32) { le.PutUint32(l.b[8*int(s)+4:], p+1) }

// insertAfter puts s, in no list, after at.
func (l *chain) insertAfter(at, s uint32) {
	n := l.next(at)
	l.setNext(s, n)
	l.setPrev(s, at)
	if n != none {
		l.setPrev(n, s)
	}
	l.setNext(at, s)
}

// unlink takes s out of its list and returns what followed it.
func (l *chain) unlink(s uint32) (next uint32) {
	n, p := l.next(s), l.prev(s)
	if p != none {
		l.setNext(p, n)
	}
	if n != none {
		l.setPrev(n, p)
	}
	l.setNext(s, none)
	l.setPrev(s, none)
	return n
}

func (l *chain) release() {
	l.o.put(l.b)
	l.b = nil
}
