package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// encodingPublisher is a Publisher that encodes each event as the worker's
// publisher does and keeps nothing: benchmarks run many requests, and the
// fake's duplicate check is linear in the events kept.
type encodingPublisher struct{}

func (encodingPublisher) PublishEvent(_ context.Context, e domain.Event) error {
	_, err := e.Encode()
	return err
}

// encodingOutcomes is the fake OutcomeStore encoding each outcome's event
// as the MongoDB store does.
type encodingOutcomes struct{ fakeOutcomes }

func (f *encodingOutcomes) Record(ctx context.Context, o handlers.Outcome) (handlers.Outcome, bool, error) {
	if _, err := json.Marshal(o.Event); err != nil {
		return handlers.Outcome{}, false, err
	}
	return f.fakeOutcomes.Record(ctx, o)
}

// BenchmarkAttestHandler runs Attest.Handle on the fakes: a new session, a
// verify-only request, and a factor attached to an existing session by its
// session token. Tokens are signed before the timer starts; what is left is
// the handler's own work (ES256 verify, session JWT signing, encodings),
// and the event encodings of the store and the publisher.
func BenchmarkAttestHandler(b *testing.B) {
	for _, mode := range []string{"session", "verify-only", "attach"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, false)
			e.addUser(b, "user-ada", "ada@example.com", domain.UserActive)
			pub := encodingPublisher{}
			e.attest.Pub, e.attest.Done.Pub = pub, pub
			e.attest.Done.Outcomes = &encodingOutcomes{}
			var sessionToken string
			if mode == "attach" {
				sessionToken = e.startSession(b, "bench-start", "ada@example.com").SessionToken
			}
			inputs := make([]handlers.Input, b.N)
			for i := range inputs {
				tok, _ := e.token(b, "ada@example.com", t0)
				p := map[string]any{"request_id": fmt.Sprint("bench-", i), "profile_id": e.profile.ProfileID, "token": tok}
				switch mode {
				case "session":
					p["session_duration_minutes"] = 60
				case "attach":
					p["session_token"] = sessionToken
					p["session_custom_claims"] = map[string]any{"n": i, "team": "blue"}
				}
				data, err := json.Marshal(p)
				if err != nil {
					b.Fatal(err)
				}
				inputs[i] = handlers.Input{Data: data}
			}
			e.clock.Set(t0.Add(time.Second))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				out, err := e.attest.Handle(ctx, inputs[i])
				if err != nil || out.Outcome.StatusCode != 200 {
					b.Fatalf("attest %d: %v %s", i, err, out.Reply)
				}
			}
		})
	}
}
