package mongostore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// BenchmarkViewLoad measures what a restart spends on the view: loading N
// users and N sessions (one revision each) from the store and applying them
// to a View, as the worker's feed does at start. N is BENCH_VIEW_USERS
// (default 20,000); the result is also given per 100,000 users.
//
//	go test -run '^$' -bench BenchmarkViewLoad -benchtime 3x ./repo/mongostore/
func BenchmarkViewLoad(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("BENCH_VIEW_USERS")); err == nil && v > 0 {
		n = v
	}
	s, _ := openStoreWith(b)
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				u, err := domain.NewJITUser(fmt.Sprintf("user%07d@example.com", i), "", now)
				if err == nil {
					err = s.InsertUser(ctx, u)
				}
				if err == nil {
					ev := domain.FactorEvidence{ProfileID: "trusted-auth-token-profile-0123", TokenID: domain.NewUUID(), Roles: []string{"member"}}
					sid := domain.SessionIDPrefix + domain.DerivedUUID("session", fmt.Sprint("req-", i), "token")
					_, _, err = s.InsertRevision(ctx, domain.SessionState{Session: domain.NewSession(sid, u.UserID, ev, nil, now, 60), Revision: 1}, fmt.Sprint("req-", i))
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	tokenOf := func(id string) string { return "token-of-" + id }
	var loadStore, apply time.Duration
	for b.Loop() {
		start := time.Now()
		users, err := s.LoadUsers(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sessions, err := s.LoadSessions(ctx, now.Add(-time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		v := handlers.NewView(tokenOf)
		for _, r := range users {
			v.PutUser(r.User, r.Deleted)
		}
		for _, st := range sessions {
			v.PutSession(st)
		}
		loadStore += mid.Sub(start)
		apply += time.Since(mid)
		if _, u, ss := v.Counts(); u != n || ss != n {
			b.Fatalf("view holds %d users, %d sessions; want %d", u, ss, n)
		}
	}
	per := float64(100000) / float64(n) / float64(b.N)
	b.ReportMetric(loadStore.Seconds()*per, "store-s/100k-users")
	b.ReportMetric(apply.Seconds()*per, "view-s/100k-users")
}
