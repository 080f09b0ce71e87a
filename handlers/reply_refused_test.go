package handlers_test

import (
	"encoding/json"
	"testing"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestReplyRefusedIsInTheEventOnly: a request whose reply the worker
// refuses gets the outcome it would get otherwise (a session, a refusal);
// its event says reply_refused, and one whose reply is allowed does not.
func TestReplyRefusedIsInTheEventOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	for _, refused := range []bool{true, false} {
		ok, _ := e.token(t, "ada@example.com", e.clock.Now())
		id := map[bool]string{true: "refused", false: "allowed"}[refused]
		r := e.attestReply(t, handlers.Input{ReplyRefused: refused}, map[string]any{"request_id": id + "-ok", "token": ok, "session_duration_minutes": 60})
		if r.StatusCode != 200 || r.Session == nil {
			t.Fatalf("%s: %+v", id, r)
		}
		r = e.attestReply(t, handlers.Input{ReplyRefused: refused}, map[string]any{"request_id": id + "-bad", "token": "not.a.token"})
		e.wantRefused(t, id+"-bad", r, domain.ErrInvalidToken)
		for _, req := range []string{id + "-ok", id + "-bad"} {
			evs := e.eventsFor(req)
			if len(evs) != 1 {
				t.Fatalf("%s: %d events", req, len(evs))
			}
			var d handlers.AttestEventData
			if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.ReplyRefused != refused {
				t.Errorf("%s: reply_refused %v in %s", req, d.ReplyRefused, evs[0].Data)
			}
		}
	}
}
