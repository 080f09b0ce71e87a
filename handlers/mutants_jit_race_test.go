package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// hookOutcomes runs hook once, before recording the first outcome whose
// event is of type on.
type hookOutcomes struct {
	*fakeOutcomes
	on   string
	hook func()
	once sync.Once
}

func (h *hookOutcomes) Record(ctx context.Context, o handlers.Outcome) (handlers.Outcome, bool, error) {
	if o.Event.Type == h.on {
		h.once.Do(h.hook)
	}
	return h.fakeOutcomes.Record(ctx, o)
}

// TestJITRaceLoserAnswersWithTheStoredUser: two workers provision the JIT
// user of one address a few seconds apart. Worker X's user (created at t0)
// is stored, published and applied to worker Y's view just after Y found no
// user and recorded its own (created 5 s later). Y's user.created has the
// same event id and is dropped as a duplicate; the store and the view keep
// X's record. Y's reply should name that user, as provision's comment says
// ("the loser uses the winner's record").
//
// Found by mutant attest.go provision `version > u.Version`, which lived:
// at an equal version the loser of a JIT race answered with its own record,
// whose created_at and updated_at (and emails' casing, external id) are not
// the stored user's. The loser now answers with the view's record.
func TestJITRaceLoserAnswersWithTheStoredUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, true)
	x, err := domain.NewJITUser("ada@example.com", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	xEvent, err := domain.NewEvent(domain.EventID("jit-user", fmt.Sprintf("%s#%d", x.UserID, x.Version)), domain.EventUserCreated, x.UserID, t0, handlers.UserEventData{User: &x})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := &hookOutcomes{fakeOutcomes: e.outcomes, on: domain.EventUserCreated, hook: func() {
		// Worker X: stored, published, applied here.
		if err := e.users.InsertUser(ctx, x); err != nil {
			t.Error(err)
		}
		if err := e.pub.PublishEvent(ctx, xEvent); err != nil {
			t.Error(err)
		}
		e.view.PutUser(x, false)
	}}
	a := &handlers.Attest{
		View: e.view, Barrier: e.barrier, Keys: fakeKeys{}, Replays: e.replays, Sessions: e.sessions, Revisions: e.sessions, Users: e.users,
		Pub: e.pub, Done: &handlers.Completer{Outcomes: outcomes, Pub: e.pub},
		Issuer: e.issuer, Now: e.clock.Now, Skew: testSkew, MaxTokenBytes: domain.DefaultMaxTokenBytes,
	}
	e.clock.Set(t0.Add(5 * time.Second))
	tok, _ := e.token(t, "ada@example.com", e.clock.Now())
	data, _ := json.Marshal(map[string]any{"profile_id": e.profile.ProfileID, "request_id": "jit-y", "token": tok})
	out, err := a.Handle(ctx, handlers.Input{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	var r handlers.AttestReply
	if err := json.Unmarshal(out.Reply, &r); err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 200 || r.User == nil || r.UserID != x.UserID {
		t.Fatalf("attest: %+v", r)
	}
	if n := len(e.pub.OfType(domain.EventUserCreated)); n != 1 {
		t.Errorf("%d user.created events, want 1 (X's)", n)
	}
	if got, _ := e.view.User(x.UserID); !got.CreatedAt.Equal(x.CreatedAt) {
		t.Errorf("the view holds a user created at %v, want X's %v", got.CreatedAt, x.CreatedAt)
	}
	if !r.User.CreatedAt.Equal(x.CreatedAt) || !r.User.UpdatedAt.Equal(x.UpdatedAt) {
		t.Errorf("reply names a user created at %v, updated at %v; the stored user (X's) was created and updated at %v", r.User.CreatedAt, r.User.UpdatedAt, x.CreatedAt)
	}
}
