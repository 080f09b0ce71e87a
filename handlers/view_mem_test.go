package handlers_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// viewBytesPerUser loads n users, each with one session as an attest makes
// them (a JIT user with one verified address, a session with the
// trusted-auth-token factor and one role), into a new View and returns the
// memory it holds per user: HeapInuse after a GC, less HeapInuse before,
// plus what the view has mapped outside the Go heap, divided by n. The inputs are made one at a time and dropped, so only what
// the view keeps is counted.
func viewBytesPerUser(tb testing.TB, n int) float64 {
	tb.Helper()
	key := []byte("bench-session-token-key-32-bytes")
	tokenOf := func(id string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id))
		return "tat_st_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := handlers.NewView(tokenOf)
	now := time.Now()
	for i := range n {
		u, err := domain.NewJITUser(fmt.Sprintf("user%07d@example.com", i), "", now)
		if err != nil {
			tb.Fatal(err)
		}
		v.PutUser(u, false)
		sid := domain.SessionIDPrefix + domain.DerivedUUID("session", fmt.Sprint("req-", i), "token")
		ev := domain.FactorEvidence{ProfileID: "trusted-auth-token-profile-0123", TokenID: domain.NewUUID(), Roles: []string{"member"}}
		s := domain.NewSession(sid, u.UserID, ev, nil, now, 60)
		v.PutSession(domain.SessionState{Session: s, Revision: 1})
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if _, users, sessions := v.Counts(); users != n || sessions != n {
		tb.Fatalf("view holds %d users, %d sessions", users, sessions)
	}
	return float64(int64(after.HeapInuse)-int64(before.HeapInuse)+int64(v.OffHeapBytes())) / float64(n)
}

// BenchmarkViewMemory reports the view's heap bytes per user with one
// session (a size, not a time: run with -benchtime=1x).
func BenchmarkViewMemory(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = viewBytesPerUser(b, n)
			}
			b.ReportMetric(per, "B/user+session")
		})
	}
}

// TestViewMemoryPerUser holds the view to at most 2 KiB per user with one
// session (a size, not a time).
func TestViewMemoryPerUser(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 20,000 users")
	}
	per := viewBytesPerUser(t, 20000)
	t.Logf("%.0f bytes per user with one session", per)
	if per > 2048 {
		t.Fatalf("the view holds %.0f bytes per user with one session, more than 2 KiB", per)
	}
}

// BenchmarkViewReads times what an attest asks of a view of 100,000 users
// with a session each: the user by address, the session by token, and a
// new revision of the session.
func BenchmarkViewReads(b *testing.B) {
	key := []byte("bench-session-token-key-32-bytes")
	tokenOf := func(id string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id))
		return "tat_st_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	v := handlers.NewView(tokenOf)
	now := time.Now()
	const n = 100000
	emails, tokens := make([]string, n), make([]string, n)
	states := make([]domain.SessionState, n)
	for i := range n {
		emails[i] = fmt.Sprintf("user%07d@example.com", i)
		u, err := domain.NewJITUser(emails[i], "", now)
		if err != nil {
			b.Fatal(err)
		}
		v.PutUser(u, false)
		sid := domain.SessionIDPrefix + domain.DerivedUUID("session", fmt.Sprint("req-", i), "token")
		ev := domain.FactorEvidence{ProfileID: "trusted-auth-token-profile-0123", TokenID: domain.NewUUID(), Roles: []string{"member"}}
		states[i] = domain.SessionState{Session: domain.NewSession(sid, u.UserID, ev, nil, now, 60), Revision: 1}
		v.PutSession(states[i])
		tokens[i] = tokenOf(sid)
	}
	i := 0
	for b.Loop() {
		j := i % n
		i++
		if _, ok := v.UserByEmail(emails[j]); !ok {
			b.Fatal("user not found")
		}
		st, ok := v.SessionByToken(tokens[j])
		if !ok {
			b.Fatal("session not found")
		}
		st.Revision = states[j].Revision + 1
		states[j].Revision++
		v.PutSession(st)
	}
}
