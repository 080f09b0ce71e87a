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

// TestViewManySessionsOfOneUser: one user attesting again and again (each
// attest a new session, held until it expires) costs the by-user index one
// entry, not one per session: entries under one hash would sit in one run
// of the table, which each new session, and each swept one, would walk
// (BenchmarkViewSessionsOfOneUser times it). Half of the sessions, then the
// rest, are swept: the list passes from a swept first session to the next.
func TestViewManySessionsOfOneUser(t *testing.T) {
	const n = 30000
	v := NewView(func(id string) string { return "token-of-" + id })
	now := time.Now()
	for i := range n {
		v.PutSession(domain.SessionState{Session: domain.Session{SessionID: fmt.Sprintf("s-%05d", i), UserID: "u-one",
			ExpiresAt: now.Add(time.Duration(i%2) * time.Hour)}, Revision: 1})
	}
	v.PutSession(domain.SessionState{Session: domain.Session{SessionID: "s-other", UserID: "u-other", ExpiresAt: now.Add(2 * time.Hour)}, Revision: 1})
	if got := v.sessionsByUser.n; got != 2 {
		t.Fatalf("the by-user index has %d entries for 2 users", got)
	}
	if got := len(v.SessionsOfUser("u-one")); got != n {
		t.Fatalf("the user has %d sessions, want %d", got, n)
	}
	if swept := v.Sweep(now.Add(time.Minute)); swept != n/2 {
		t.Fatalf("swept %d, want %d", swept, n/2)
	}
	got := v.SessionsOfUser("u-one")
	if len(got) != n/2 || got[0].Session.SessionID != "s-00001" || got[len(got)-1].Session.SessionID != fmt.Sprintf("s-%05d", n-1) {
		t.Fatalf("after the sweep the user has %d sessions (%v...)", len(got), got[:min(len(got), 1)])
	}
	if got := v.sessionsByUser.n; got != 2 {
		t.Fatalf("after the sweep, the by-user index has %d entries for 2 users", got)
	}
	if swept := v.Sweep(now.Add(90 * time.Minute)); swept != n/2 {
		t.Fatalf("swept %d, want %d", swept, n/2)
	}
	if got := v.SessionsOfUser("u-one"); len(got) != 0 {
		t.Fatalf("swept, the user has %d sessions", len(got))
	}
	if got := v.SessionsOfUser("u-other"); len(got) != 1 || v.sessionsByUser.n != 1 {
		t.Fatalf("the other user has %d sessions, the by-user index %d entries", len(got), v.sessionsByUser.n)
	}
}

// BenchmarkViewSessionsOfOneUser times a session of a user who holds
// 10,000 others: made, then swept.
func BenchmarkViewSessionsOfOneUser(b *testing.B) {
	v := NewView(func(id string) string { return "token-of-" + id })
	now := time.Now()
	for i := range 10000 {
		v.PutSession(domain.SessionState{Session: domain.Session{SessionID: fmt.Sprint("s-held-", i), UserID: "u-one", ExpiresAt: now.Add(time.Hour)}, Revision: 1})
	}
	i := 0
	for b.Loop() {
		i++
		v.PutSession(domain.SessionState{Session: domain.Session{SessionID: fmt.Sprint("s-", i), UserID: "u-one", ExpiresAt: now}, Revision: 1})
		if v.Sweep(now.Add(time.Minute)) != 1 {
			b.Fatal("not swept")
		}
	}
}

// TestViewSessionsOfUserModel: sessions of a few users made, moved to
// another user by a later revision, and swept, in random order; each
// user's sessions are those of a map, whichever of them came first.
func TestViewSessionsOfUserModel(t *testing.T) {
	v := NewView(func(id string) string { return "token-of-" + id })
	now := time.Now()
	rnd := rand.New(rand.NewPCG(7, 8))
	users := []string{"u-a", "u-b", "u-c", "u-d"}
	for _, id := range users[:2] { // some held as users, some not
		v.PutUser(domain.User{UserSpec: domain.UserSpec{UserID: id}, Version: 1}, false)
	}
	type sess struct {
		user string
		rev  int64
		exp  time.Time
	}
	model := map[string]*sess{}
	check := func() {
		t.Helper()
		for _, u := range users {
			var want []string
			for id, s := range model {
				if s.user == u {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			var got []string
			for _, st := range v.SessionsOfUser(u) {
				if st.Session.UserID != u {
					t.Fatalf("a session of %s says %s", u, st.Session.UserID)
				}
				got = append(got, st.Session.SessionID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: sessions %v, want %v", u, got, want)
			}
		}
	}
	for i := range 5000 {
		switch op := rnd.IntN(20); {
		case op < 12:
			id := fmt.Sprint("s-", i)
			s := &sess{users[rnd.IntN(len(users))], 1, now.Add(time.Duration(rnd.IntN(100)) * time.Second)}
			model[id] = s
			v.PutSession(domain.SessionState{Session: domain.Session{SessionID: id, UserID: s.user, ExpiresAt: s.exp}, Revision: s.rev})
		case op < 18:
			for id, s := range model { // a random one, as map order goes
				s.rev++
				s.user = users[rnd.IntN(len(users))]
				v.PutSession(domain.SessionState{Session: domain.Session{SessionID: id, UserID: s.user, ExpiresAt: s.exp}, Revision: s.rev})
				break
			}
		default:
			cut := now.Add(time.Duration(rnd.IntN(100)) * time.Second / 10)
			want := 0
			for id, s := range model {
				if s.exp.Before(cut) {
					delete(model, id)
					want++
				}
			}
			if got := v.Sweep(cut); got != want {
				t.Fatalf("swept %d, want %d", got, want)
			}
		}
		if i%50 == 0 {
			check()
		}
	}
	check()
}
