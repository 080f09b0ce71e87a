package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// TestStartLoadsLatestRevisions: a starting worker streams the store's
// users and every session revision into its view, and the latest revision
// decides: a session shortened to have ended over an hour ago is not
// loaded, though its first revision runs ten more hours; a revoked one is
// loaded revoked; one whose revisions are stored newest first is loaded at
// its newest; a deleted user is loaded deleted.
func TestStartLoadsLatestRevisions(t *testing.T) {
	env := workertest.NewEnv(t)
	s := env.Store()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	for i, e := range []string{"a@example.com", "b@example.com"} {
		u, err := domain.NewJITUser(e, "", now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutUser(ctx, u, i == 1); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := domain.NewJITUser("a@example.com", "", now)
	b, _ := domain.NewJITUser("b@example.com", "", now)
	rev := func(id string, r int64, exp time.Time, revoked bool) {
		t.Helper()
		st := domain.SessionState{Revision: r, Revoked: revoked, Session: domain.Session{SessionID: id, UserID: a.UserID,
			StartedAt: now, LastAccessedAt: now.Add(time.Duration(r) * time.Second), ExpiresAt: exp}}
		if _, _, err := s.InsertRevision(ctx, st, fmt.Sprint("req-", id, "-", r)); err != nil {
			t.Fatal(err)
		}
	}
	rev("s-short", 1, now.Add(10*time.Hour), false)
	rev("s-short", 2, now.Add(-3*time.Hour), false)
	rev("s-revoked", 1, now.Add(time.Hour), false)
	rev("s-revoked", 2, now.Add(time.Hour), true)
	rev("s-backwards", 3, now.Add(3*time.Hour), false)
	rev("s-backwards", 1, now.Add(time.Hour), false)
	rev("s-backwards", 2, now.Add(2*time.Hour), false)
	rev("s-recent", 1, now.Add(-time.Minute), false) // ended within the hour: kept

	w := env.StartWorker(nil, nil)
	v := w.W.View()
	if _, ok := v.Session("s-short"); ok {
		t.Fatal("a session whose latest revision ended three hours ago was loaded")
	}
	if st, ok := v.Session("s-revoked"); !ok || !st.Revoked || st.Revision != 2 {
		t.Fatalf("revoked session: %v %+v", ok, st)
	}
	if st, ok := v.Session("s-backwards"); !ok || st.Revision != 3 || !st.Session.ExpiresAt.Equal(now.Add(3*time.Hour)) {
		t.Fatalf("session stored newest first: %v %+v", ok, st)
	}
	if _, ok := v.Session("s-recent"); !ok {
		t.Fatal("a session that ended a minute ago was not loaded")
	}
	if got := len(v.SessionsOfUser(a.UserID)); got != 3 {
		t.Fatalf("user a has %d sessions in the view, want 3", got)
	}
	if _, ok := v.User(a.UserID); !ok {
		t.Fatal("user a not loaded")
	}
	if ver, _, live := v.UserVersion(b.UserID); ver == 0 || live {
		t.Fatalf("deleted user b: version %d, live %v", ver, live)
	}
	if _, ok := v.UserByEmail("b@example.com"); ok {
		t.Fatal("a deleted user's address leads to it")
	}
}

// slowLoadStore is a store whose snapshot hands over users one every gap.
type slowLoadStore struct {
	*mongostore.Store
	gap time.Duration
}

func (s slowLoadStore) EachUser(ctx context.Context, f func(domain.UserRecord) error) error {
	return s.Store.EachUser(ctx, func(r domain.UserRecord) error {
		time.Sleep(s.gap)
		return f(r)
	})
}

// TestStartOutlastingItsDeadline: a snapshot load longer than the
// start-up's deadline (here 1 s against 3 s of load) neither fails the
// start-up nor leaves the steps after it without time: the worker becomes
// ready with every user loaded. (Before, the load ran under that deadline,
// and a store of 100,000 users kept the embedded worker retrying its
// start-up.)
func TestStartOutlastingItsDeadline(t *testing.T) {
	worker.SetStartTimeout(t, time.Second)
	env := workertest.NewEnv(t)
	s := env.Store()
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range 30 {
		u, err := domain.NewJITUser(fmt.Sprintf("slow%d@example.com", i), "", now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutUser(ctx, u, false); err != nil {
			t.Fatal(err)
		}
	}
	w := env.StartWorkerOn(slowLoadStore{Store: s, gap: 100 * time.Millisecond}, s, nil, nil)
	if _, users, _ := w.W.View().Counts(); users != 30 {
		t.Fatalf("ready with %d users in the view, want 30", users)
	}
	if n := strings.Count(w.Logs.String(), "start-up not complete"); n != 0 {
		t.Fatalf("start-up retried %d times:\n%s", n, w.Logs.String())
	}
}
