package mongostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
)

func reviewOutcome(t testing.TB, key string, at time.Time) domain.Outcome {
	t.Helper()
	ev, err := domain.NewEvent("e-"+key, domain.EventAttestVerified, "s", at, map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	return domain.Outcome{Key: key, StatusCode: 200, Reply: json.RawMessage(`{}`), Event: ev, CreatedAt: at}
}

// TestMarkersShareABatchWithConflictingOutcomes: markers now ride in the
// outcomes' insertMany, next to outcomes that conflict (a repeat, a
// redelivery). FerretDB then inserts the batch again one document at a
// time; every marker must still be stored and its caller told so, and
// every conflicting Record must get the stored outcome, not an error.
func TestMarkersShareABatchWithConflictingOutcomes(t *testing.T) {
	s, name := openStoreWith(t, mongostore.WithBatching(mongostore.BatchOptions{MaxDocs: 8, Delay: time.Hour}))
	ctx := context.Background()
	seed, err := mongostore.Open(ctx, ferret.URI(), name, mongostore.WithBatching(mongostore.BatchOptions{MaxDocs: 1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seed.Close(ctx) })
	now := time.Now()
	for i := range 4 {
		if _, ins, err := seed.Record(ctx, reviewOutcome(t, fmt.Sprint("attest:b", i), now)); err != nil || !ins {
			t.Fatalf("seed %d: %v %v", i, ins, err)
		}
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := s.MarkPublished(ctx, reviewOutcome(t, fmt.Sprint("attest:b", i), now)); err != nil {
				t.Errorf("MarkPublished %d in a batch with conflicts: %v", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			o, ins, err := s.Record(ctx, reviewOutcome(t, fmt.Sprint("attest:b", i), now.Add(time.Hour)))
			if err != nil || ins || o.CreatedAt.After(now.Add(time.Minute)) {
				t.Errorf("repeat Record %d: inserted %v, err %v, got the repeat's outcome %v", i, ins, err, o.CreatedAt.After(now.Add(time.Minute)))
			}
		}()
	}
	wg.Wait()
	if st := s.BatchStats(); st.Batches != 1 || st.Documents != 8 {
		t.Fatalf("batch stats %+v: the markers and the repeats did not share one insertMany", st)
	}
	for i := range 4 {
		if o, ok, err := s.Get(ctx, fmt.Sprint("attest:b", i)); err != nil || !ok || !o.Published {
			t.Errorf("attest:b%d after the shared batch: published %v found %v err %v", i, o.Published, ok, err)
		}
	}
}

// TestRecordConflictSeesLegacyMarker: a repeat whose outcome was published
// before markers moved (its marker is in outcomes_published) gets it back
// as published, so the resume publishes nothing.
func TestRecordConflictSeesLegacyMarker(t *testing.T) {
	s, _ := openStoreWith(t)
	ctx := context.Background()
	if _, _, err := s.Record(ctx, reviewOutcome(t, "attest:old", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := mongostore.RawCollection(t, s, "outcomes_published").InsertOne(ctx, bson.M{"_id": "attest:old", "created_at": time.Now()}); err != nil {
		t.Fatal(err)
	}
	o, ins, err := s.Record(ctx, reviewOutcome(t, "attest:old", time.Now()))
	if err != nil || ins || !o.Published {
		t.Fatalf("repeat of an outcome with a legacy marker: inserted %v published %v err %v", ins, o.Published, err)
	}
}

// TestSweepNeverLeavesAMarkerWithoutItsOutcome: the sweeper deletes an
// outcome by its created_at and its marker by the marker's own, which is
// when the event was published, later. In between, the marker outlives its
// outcome; a command with the same id then (a publisher's retry after
// TAT_OUTCOME_RETENTION) records a new outcome that Get reports as
// published, and if its worker dies before publishing, no delivery ever
// publishes its event. (The same held with outcomes_published; keeping
// the marker in outcomes makes the fix a matter of the marker's
// created_at.)
func TestSweepNeverLeavesAMarkerWithoutItsOutcome(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	now := time.Now()
	// Recorded 2 h ago; its event published (late: a resume) 30 min ago.
	late := reviewOutcome(t, "attest:late", now.Add(-2*time.Hour))
	if _, _, err := s.Record(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPublished(ctx, late); err != nil {
		t.Fatal(err)
	}
	// Retention one hour, swept 30 min after the publication.
	if _, err := s.Sweep(ctx, time.Now().Add(30*time.Minute), time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(ctx, "attest:late"); ok {
		t.Fatal("outcome older than the retention survived the sweep")
	}
	// The same request id again: a new outcome, not yet published.
	if _, ins, err := s.Record(ctx, reviewOutcome(t, "attest:late", time.Now())); err != nil || !ins {
		t.Fatalf("new outcome: %v %v", ins, err)
	}
	if o, _, _ := s.Get(ctx, "attest:late"); o.Published {
		t.Fatal("a new outcome is reported published by the swept outcome's marker: its event would never be published after a crash before the publish")
	}
}
