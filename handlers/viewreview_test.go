package handlers

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// TestRecsReplaceAcrossRollover: one record replaced again and again (a
// hot session's new revisions) fills the current chunk with its own dead
// copies; when the chunk rolls over, the record being replaced is the only
// live one in it and is moved before the replace drops its old bytes.
// The replace must not read the old bytes from the unmapped (or reused)
// chunk, nor leave the moved copy counted live.
func TestRecsReplaceAcrossRollover(t *testing.T) {
	var o offheap
	rs := newRecs(&o)
	model := map[uint32][]byte{}
	s := rs.add(bytes.Repeat([]byte{1}, 200))
	model[s] = bytes.Repeat([]byte{1}, 200)
	for i := range 3 * chunkSize / 200 {
		p := bytes.Repeat([]byte{byte(i)}, 200)
		rs.replace(s, p)
		model[s] = p
	}
	checkRecs(t, &rs, model)
	rs.release()
}

// TestViewHotSessionRevisions: a session refreshed a few thousand times
// (each refresh a new revision, every worker applying it) is the only live
// record of its chunk when the chunk fills; the view keeps working.
func TestViewHotSessionRevisions(t *testing.T) {
	v := NewView(func(id string) string { return "token-of-" + id })
	now := time.Now()
	u, err := domain.NewJITUser("hot@example.com", "", now)
	if err != nil {
		t.Fatal(err)
	}
	v.PutUser(u, false)
	s := domain.Session{SessionID: "s-hot", UserID: u.UserID, ExpiresAt: now.Add(time.Hour), Roles: []string{"member"}}
	for rev := int64(1); rev <= 20000; rev++ {
		s.LastAccessedAt = now.Add(time.Duration(rev) * time.Second)
		v.PutSession(domain.SessionState{Session: s, Revision: rev})
	}
	st, ok := v.SessionByToken("token-of-s-hot")
	if !ok || st.Revision != 20000 || st.Session.UserID != u.UserID {
		t.Fatalf("got %+v, %v", st, ok)
	}
	if m := v.OffHeapBytes(); m > 4*chunkSize {
		t.Fatalf("one session and one user map %d bytes", m)
	}
}

// TestRecsModelChurn is TestRecsModel for few records changed often (hot
// sessions): chunks roll over holding mostly dead copies of the records
// being replaced, and some records are larger than a chunk, so the chunk a
// replace rolls over from is reclaimed, unmapped and reused in the middle
// of the replace. The accounting is checked often.
func TestRecsModelChurn(t *testing.T) {
	var o offheap
	rs := newRecs(&o)
	model := map[uint32][]byte{}
	rnd := rand.New(rand.NewPCG(5, 6))
	var held []uint32
	for i := range 50000 {
		n := rnd.IntN(300)
		switch rnd.IntN(200) {
		case 0:
			n = chunkSize + rnd.IntN(8000)
		case 1, 2, 3:
			n = 4000 + rnd.IntN(8000)
		}
		p := bytes.Repeat([]byte{byte(i)}, n)
		switch op := rnd.IntN(100); {
		case len(held) < 8 || op < 2:
			s := rs.add(p)
			model[s] = p
			held = append(held, s)
		case op < 4 && len(held) > 8:
			j := rnd.IntN(len(held))
			s := held[j]
			held[j] = held[len(held)-1]
			held = held[:len(held)-1]
			rs.remove(s)
			delete(model, s)
		default:
			s := held[rnd.IntN(min(len(held), 4))] // a few hot records
			rs.replace(s, p)
			model[s] = p
		}
		if i%97 == 0 {
			checkRecs(t, &rs, model)
		}
	}
	checkRecs(t, &rs, model)
	rs.release()
	if o.mapped != 0 {
		t.Fatalf("release left %d bytes mapped", o.mapped)
	}
}
