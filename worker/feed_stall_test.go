package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// slowSnapshot hands over users one every gap (after first, which it
// waits before its first user), and no sessions.
type slowSnapshot struct {
	users      int
	gap, first time.Duration
}

func (s slowSnapshot) LoadProfiles(context.Context) ([]domain.ProfileRecord, error) { return nil, nil }

func (s slowSnapshot) EachUser(ctx context.Context, f func(domain.UserRecord) error) error {
	for i := range s.users {
		wait := s.gap
		if i == 0 {
			wait = s.first
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		u, err := domain.NewJITUser(fmt.Sprintf("user%d@example.com", i), "", time.Now())
		if err != nil {
			return err
		}
		if err := f(domain.UserRecord{User: u}); err != nil {
			return err
		}
	}
	return nil
}

func (s slowSnapshot) EachSession(context.Context, func(domain.SessionState) error) error { return nil }

func stallFeed(t *testing.T, store SnapshotLoader) *feed {
	t.Helper()
	_, st, nc := publisherFixture(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &feed{js: js, stream: st.CachedInfo().Config.Name, view: handlers.NewView(func(id string) string { return "t-" + id }),
		store: store, log: zerolog.Nop(), now: time.Now, sig: newSigner(make([]byte, 32), eventSigningLabel),
		refused: newMetrics(prometheus.NewRegistry(), func() (int, int, int) { return 0, 0, 0 }).eventsRefused, refusalLog: zerolog.Nop()}
}

// TestFeedLoadIsBoundedByProgressNotLength: a load that keeps handing over
// records runs as long as it takes (here three times loadStall), and one
// that stops is given up after loadStall without a record, with an error
// that says so.
func TestFeedLoadIsBoundedByProgressNotLength(t *testing.T) {
	old := loadStall
	loadStall = time.Second
	t.Cleanup(func() { loadStall = old })

	f := stallFeed(t, slowSnapshot{users: 150, gap: 20 * time.Millisecond})
	start := time.Now()
	if err := f.start(context.Background()); err != nil {
		t.Fatalf("a load that progresses failed after %v: %v", time.Since(start), err)
	}
	t.Cleanup(f.stop)
	if _, users, _ := f.view.Counts(); users != 150 {
		t.Fatalf("view holds %d users, want 150", users)
	}

	g := stallFeed(t, slowSnapshot{users: 2, first: 30 * time.Second})
	err := g.start(context.Background())
	if !errors.Is(err, errLoadStalled) {
		t.Fatalf("a stalled load: %v, want %v", err, errLoadStalled)
	}
}
