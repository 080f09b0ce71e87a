package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStuckEventsConsumerIsRestarted: when the ordered consumer that keeps
// the view current stops delivering (seen in the cluster chaos test after
// the node holding the stream was killed), a catch-up that finds the view
// not moving at all restarts it from the view's position, so the worker
// does not stay behind (and dead-letter every request that needs a
// catch-up) forever.
func TestStuckEventsConsumerIsRestarted(t *testing.T) {
	f := newFixture(t)
	f.w.W.StallEventsConsumer()
	// A change the stalled consumer does not deliver: the worker applies
	// its own event locally, but the view's stream position stays behind.
	mustStatus(t, f.env.Request(f.env.Subject("users", "commands"), "", map[string]any{
		"change_id": "stuck-1", "op": "upsert", "user": map[string]any{
			"emails": []any{map[string]any{"email": "stuck@example.com", "verified": true}}}}), 200)
	before := f.w.W.ViewSeq()
	ctx := context.Background()
	if err := f.w.W.CatchUp(ctx); err == nil {
		t.Fatalf("catch-up with a stalled consumer succeeded at seq %d", before)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f.w.W.CatchUp(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the view never caught up after the restart: %v (seq %d)", err, f.w.W.ViewSeq())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := f.w.W.ViewSeq(); after <= before {
		t.Fatalf("view seq %d, was %d", after, before)
	}
	if !strings.Contains(f.w.Logs.String(), "events consumer stuck; restarted") {
		t.Error("the restart was not logged")
	}
	// And it keeps following: an attest that needs nothing new still works.
	mustStatus(t, f.attest("stuck-attest", map[string]any{"session_duration_minutes": 10}), 200)
}
