package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestRedeliveryOfAnUnstartedRequestReadsOnce: a redelivery of a request
// no earlier delivery got to (prefetched by a worker that died) reads the
// outcomes store once, for its outcome, and not for its just-in-time user
// record unless the view holds the address's JIT user made after the
// request was published: on FerretDB every read is a scan of the
// collection, and after a SIGKILL these are most of the redeliveries. It
// still ends in its one outcome.
func TestRedeliveryOfAnUnstartedRequestReadsOnce(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		jit    bool
		known  bool // the user is in the view, made long before the request
		jitted bool // made just in time by another request, long before
	}{
		{"jit profile, new user", true, false, false},
		{"jit profile, known user", true, true, false},
		{"jit profile, user made just in time an hour before", true, false, true},
		{"profile without jit, known user", false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, c.jit)
			email := "fresh@example.com"
			if c.known {
				e.addUser(t, "user-test-known", email, domain.UserActive)
				e.clock.t = t0.Add(time.Hour)
			}
			if c.jitted {
				e.startSession(t, "earlier", email)
				e.clock.t = t0.Add(time.Hour)
			}
			tok, _ := e.token(t, email, e.clock.Now())
			payload := map[string]any{"request_id": "unstarted", "token": tok, "session_duration_minutes": 30}
			e.outcomes.reads()
			r := e.attestReply(t, handlers.Input{Stream: "TAT_ATTEST", StreamSeq: 3, PublishedAt: e.clock.Now().Add(-2 * time.Second), Redelivered: true}, payload)
			if r.StatusCode != 200 || r.Session == nil {
				t.Fatalf("redelivery: %+v", r)
			}
			if got := e.outcomes.reads(); len(got) != 1 || got["attest:unstarted"] != 1 {
				t.Errorf("the redelivery read %v from the outcomes store, want attest:unstarted once", got)
			}
			if n := len(e.eventsFor("unstarted")); n != 1 {
				t.Errorf("%d outcome events, want 1", n)
			}
		})
	}
}

// TestRedeliveryOfAFinishedRequestAnswersItsOutcome: a redelivery of a
// request whose outcome is stored (the worker died before its ack) answers
// that outcome, with no second event, even when what decided it has
// changed since (the user disabled, the profile deleted): it no longer
// looks the outcome up first, and the conflicts of its inserts bring it
// back to the stored one.
func TestRedeliveryOfAFinishedRequestAnswersItsOutcome(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"nothing", "user disabled", "profile deleted", "session revoked"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			u := e.addUser(t, "user-test-done", "done@example.com", domain.UserActive)
			tok, _ := e.token(t, "done@example.com", t0)
			payload := map[string]any{"request_id": "done", "token": tok, "session_duration_minutes": 30}
			in := handlers.Input{Stream: "TAT_ATTEST", StreamSeq: 5, PublishedAt: t0}
			first := e.attestReply(t, in, payload)
			if first.StatusCode != 200 || first.Session == nil {
				t.Fatalf("first delivery: %+v", first)
			}
			switch change {
			case "user disabled":
				u.Status, u.Version = domain.UserDisabled, u.Version+1
				e.view.PutUser(u, false)
			case "profile deleted":
				p := e.profile
				p.Version++
				e.view.PutProfile(p, true)
			case "session revoked":
				st, ok := e.view.Session(first.Session.SessionID)
				if !ok {
					t.Fatal("precondition: the view holds the session")
				}
				st.Revoked, st.Revision = true, st.Revision+1
				e.view.PutSession(st)
			}
			e.clock.t = t0.Add(time.Minute)
			in.Redelivered = true
			again := e.attestReply(t, in, payload)
			if again.StatusCode != 200 || again.Session == nil || again.Session.SessionID != first.Session.SessionID {
				t.Fatalf("redelivery after %s: %+v, want the first outcome %+v", change, again, first)
			}
			if n := len(e.eventsFor("done")); n != 1 {
				t.Errorf("%d outcome events, want 1", n)
			}
		})
	}
}

// TestRedeliveryRefusedReadsOnlyItsJITRecord: a redelivery refused
// before its outcome lookup (here its token is not valid) does not look
// its outcome up (what it records loses to a stored one); on a JIT
// profile it reads its JIT record, on another profile nothing.
func TestRedeliveryRefusedReadsOnlyItsJITRecord(t *testing.T) {
	t.Parallel()
	for _, jit := range []bool{true, false} {
		e := newEnv(t, jit)
		payload := map[string]any{"request_id": "bad-token", "token": "not.a.jwt", "session_duration_minutes": 30}
		e.outcomes.reads()
		r := e.attestReply(t, handlers.Input{Stream: "TAT_ATTEST", StreamSeq: 3, PublishedAt: t0, Redelivered: true}, payload)
		e.wantRefused(t, "bad-token", r, domain.ErrInvalidToken)
		got := e.outcomes.reads()
		if jit && (len(got) != 1 || got["attest-jit:bad-token"] != 1) || !jit && len(got) != 0 {
			t.Errorf("jit %v: the redelivery read %v from the outcomes store", jit, got)
		}
	}
}

// TestRedeliveryAfterARefusalWritesNothing: an earlier delivery refused
// the request before writing anything (no user had the token's email) and
// stored that outcome, and its worker died before the ack. By the
// redelivery the user exists, so the request would now succeed: it must
// answer the stored refusal and write no replay claim and no session,
// which no event would announce.
func TestRedeliveryAfterARefusalWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	tok, _ := e.token(t, "late@example.com", t0)
	payload := map[string]any{"request_id": "refused-first", "token": tok, "session_duration_minutes": 30}
	in := handlers.Input{Stream: "TAT_ATTEST", StreamSeq: 4, PublishedAt: t0}
	e.wantRefused(t, "refused-first", e.attestReply(t, in, payload), domain.ErrUserNotFound)
	e.addUser(t, "user-test-late", "late@example.com", domain.UserActive)
	in.Redelivered = true
	e.wantRefused(t, "refused-first", e.attestReply(t, in, payload), domain.ErrUserNotFound)
	if n := e.sessions.Count(); n != 0 {
		t.Errorf("%d session revisions stored, want none", n)
	}
	if n := e.replays.count(); n != 0 {
		t.Errorf("%d replay claims stored, want none", n)
	}
	if n := len(e.eventsFor("refused-first")); n != 1 {
		t.Errorf("%d outcome events, want 1", n)
	}
}

// failingReplays is a ReplayStore whose every claim fails as a store that
// times out does.
type failingReplays struct{}

func (failingReplays) Claim(context.Context, string, string, string, time.Time, time.Time) (string, bool, error) {
	return "", false, errors.New("insert replay claim: context deadline exceeded")
}

// TestRedeliveryFailingAfterItsLookupReadsOnce: a redelivery whose write
// fails transiently after its outcome lookup missed does not read the
// outcome again before it gives the message back: the store may be
// failing from overload, and every read on FerretDB scans the collection.
func TestRedeliveryFailingAfterItsLookupReadsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-test-slow", "slow@example.com", domain.UserActive)
	e.attest.Replays = failingReplays{}
	tok, _ := e.token(t, "slow@example.com", t0)
	data, _ := json.Marshal(map[string]any{"profile_id": e.profile.ProfileID, "request_id": "slow", "token": tok, "session_duration_minutes": 30})
	e.outcomes.reads()
	_, err := e.attest.Handle(context.Background(), handlers.Input{Data: data, Stream: "TAT_ATTEST", StreamSeq: 3, PublishedAt: t0, Redelivered: true})
	if err == nil || handlers.Permanent(err) {
		t.Fatalf("Handle: %v, want a transient error", err)
	}
	if got := e.outcomes.reads(); len(got) != 1 || got["attest:slow"] != 1 {
		t.Errorf("the redelivery read %v from the outcomes store, want attest:slow once", got)
	}
}
