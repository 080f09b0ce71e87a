package handlers_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// keyRecorder is an OutcomeStore that notes every key it is handed.
type keyRecorder struct {
	handlers.OutcomeStore
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) note(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, key)
}

func (k *keyRecorder) Record(ctx context.Context, o handlers.Outcome) (handlers.Outcome, bool, error) {
	k.note(o.Key)
	return k.OutcomeStore.Record(ctx, o)
}

func (k *keyRecorder) Get(ctx context.Context, key string) (handlers.Outcome, bool, error) {
	k.note(key)
	return k.OutcomeStore.Get(ctx, key)
}

func (k *keyRecorder) MarkPublished(ctx context.Context, o handlers.Outcome) error {
	k.note(o.Key)
	return k.OutcomeStore.MarkPublished(ctx, o)
}

// TestOutcomeKeysNeverTakeAMarkersID: the store keeps publication markers
// in the outcomes collection under "published/<key>" and refuses an
// outcome whose key starts so. No request id a publisher chooses (in the
// payload or the Nats-Msg-Id header) can make the attest handler use such
// a key, for an outcome, a JIT user's record or a repeat's record: every
// key starts with its kind and a colon.
func TestOutcomeKeysNeverTakeAMarkersID(t *testing.T) {
	if domain.ValidCommandID("published/x") || domain.ValidCommandID("a/b") {
		t.Fatal("a command id may hold '/'")
	}
	e := newEnv(t, true)
	rec := &keyRecorder{OutcomeStore: e.outcomes}
	e.attest.Done.Outcomes = rec
	hostile := []string{"published/attest:x", "published/", "published", "published:attest:x", "attest:x", "/x", "../published/x"}
	seq := uint64(0)
	for i, id := range hostile {
		for _, where := range []string{"payload", "header"} {
			tok, _ := e.token(t, "new"+string(rune('a'+i))+where+"@example.com", e.clock.Now())
			payload := map[string]any{"token": tok, "session_duration_minutes": 60}
			in := handlers.Input{Stream: "TAT_ATTEST", PublishedAt: t0}
			if where == "payload" {
				payload["request_id"] = id
			} else {
				in.HeaderID = id
			}
			for range 2 { // the message, then a repeat of its id from another one
				seq++
				in.StreamSeq = seq
				e.attestReply(t, in, payload)
			}
		}
	}
	// A valid id that a repeat turns into "attest.repeated:<stream>#<seq>:<id>".
	tok, _ := e.token(t, "rep@example.com", e.clock.Now())
	for range 2 {
		seq++
		e.attestReply(t, handlers.Input{Stream: "TAT_ATTEST", StreamSeq: seq, PublishedAt: t0}, map[string]any{"request_id": "published.x", "token": tok, "session_duration_minutes": 60})
	}
	kinds := []string{"attest:", "attest-jit:", "attest.repeated:"}
	seen := map[string]bool{}
	for _, k := range rec.keys {
		if strings.HasPrefix(k, "published/") {
			t.Errorf("key %q takes a publication marker's _id", k)
		}
		ok := false
		for _, p := range kinds {
			if strings.HasPrefix(k, p) {
				ok = true
				seen[p] = true
			}
		}
		if !ok {
			t.Errorf("key %q starts with no kind", k)
		}
	}
	for _, p := range kinds {
		if !seen[p] {
			t.Errorf("no %s key made; the test does not cover it", p)
		}
	}
}
