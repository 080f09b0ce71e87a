package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestChangeDoesNotAnnounceARevisionTheCatchUpBrought: two workers extend
// one session. Worker B's extension (revision 2) is stored and published;
// worker A, whose view still holds revision 1, loses revision 2 to it,
// catches up (its view now holds B's revision) and writes revision 3 on it.
// A publishes only its own session.updated: B's revision, which A's view
// holds after the catch-up, is not announced again. (Mutant sessionrev.go
// change: cur.Revision < stored.Revision.)
func TestChangeDoesNotAnnounceARevisionTheCatchUpBrought(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, false)
	ada := e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	start := e.startSession(t, "start", "ada@example.com")
	sid := start.Session.SessionID
	st1, _ := e.view.Session(sid)

	viewB := handlers.NewView(func(id string) string { return e.issuer.SessionToken(id).Reveal() })
	viewB.PutUser(ada, false)
	viewB.PutSession(st1)
	svcB := &handlers.Sessions{View: viewB, Barrier: &fakeBarrier{}, Sessions: e.sessions, Pub: e.pub, Issuer: e.issuer, Now: e.clock.Now}
	e.clock.Set(t0.Add(time.Minute))
	extend := func(svc *handlers.Sessions, minutes int) handlers.SessionReply {
		data, _ := json.Marshal(map[string]any{"session_token": start.SessionToken, "session_duration_minutes": minutes})
		return svc.Authenticate(ctx, data)
	}
	if r := extend(svcB, 120); r.StatusCode != 200 {
		t.Fatalf("worker B extends: %+v", r)
	}
	st2, _ := viewB.Session(sid)
	if st2.Revision != 2 {
		t.Fatalf("worker B's view holds revision %d, want 2", st2.Revision)
	}

	b := &lateBarrier{arrive: func() { e.view.PutSession(st2) }}
	svcA := &handlers.Sessions{View: e.view, Barrier: b, Sessions: e.sessions, Pub: e.pub, Issuer: e.issuer, Now: e.clock.Now}
	calls := e.pub.calls.Load()
	e.clock.Set(t0.Add(2 * time.Minute))
	r := extend(svcA, 90)
	if r.StatusCode != 200 || r.Session == nil {
		t.Fatalf("worker A extends: %+v", r)
	}
	if want := t0.Add(2*time.Minute + 90*time.Minute); !r.Session.ExpiresAt.Equal(want) {
		t.Errorf("session expires at %v, want %v", r.Session.ExpiresAt, want)
	}
	if n := e.sessions.Revisions(sid); n != 3 {
		t.Errorf("%d revisions stored, want 3", n)
	}
	if got, _ := e.view.Session(sid); got.Revision != 3 {
		t.Errorf("worker A's view holds revision %d, want 3", got.Revision)
	}
	if b.calls.Load() != 1 {
		t.Errorf("%d catch-ups, want 1", b.calls.Load())
	}
	if n := e.pub.calls.Load() - calls; n != 1 {
		t.Errorf("worker A made %d publish calls, want 1 (its own session.updated)", n)
	}
	if n := len(e.pub.OfType(domain.EventSessionUpdated)); n != 2 {
		t.Errorf("%d session.updated events, want 2", n)
	}
}

// TestFindReturnsTheCatchUpError: a session the view lacks is looked for
// again after a catch-up; when the catch-up fails, the request fails with
// its error, not with session_not_found. (sessionrev.go find.)
func TestFindReturnsTheCatchUpError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	svc := &handlers.Sessions{View: e.view, Barrier: failingBarrier{}, Sessions: e.sessions, Pub: e.pub, Issuer: e.issuer, Now: e.clock.Now}
	r := revoke(t, svc, map[string]any{"session_id": "session-elsewhere"})
	if r.StatusCode == 200 || r.StatusCode == 404 || r.ErrorType == domain.ErrSessionNotFound.Code {
		t.Fatalf("revoke with the catch-up failing: %+v, want the catch-up's failure", r)
	}
	if len(e.pub.Events()) != 0 {
		t.Errorf("events published: %+v", e.pub.Events())
	}
}

// TestAttachFailsWhenALaggingRevisionCannotBeAnnounced: attaching a factor
// loses the next revision to one the sessions service stored on another
// worker whose event is not out (and no catch-up brings it). Attest
// publishes that event first; when the stream refuses it, the attach fails
// and writes nothing on the unannounced revision. (Mutant attest.go attach:
// the announce error.)
func TestAttachFailsWhenALaggingRevisionCannotBeAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	start := e.startSession(t, "start", "ada@example.com")
	sid := start.Session.SessionID
	st, _ := e.view.Session(sid)
	extended := st
	extended.Revision = 2
	extended.Session.ExpiresAt = st.Session.ExpiresAt.Add(time.Hour)
	if _, _, err := e.sessions.InsertRevision(ctx, extended, "svc#other-worker"); err != nil {
		t.Fatal(err)
	}
	e.pub.refuseType(domain.EventSessionUpdated)
	e.clock.Set(t0.Add(time.Minute))
	tok, _ := e.token(t, "ada@example.com", e.clock.Now())
	data, _ := json.Marshal(map[string]any{"profile_id": e.profile.ProfileID, "request_id": "attach", "token": tok, "session_token": start.SessionToken})
	out, err := e.attest.Handle(ctx, handlers.Input{Data: data})
	if err == nil {
		var r handlers.AttestReply
		_ = json.Unmarshal(out.Reply, &r)
		if r.StatusCode == 200 {
			t.Fatalf("attach succeeded with the lagging revision's event refused: %+v", r)
		}
	}
	if n := e.sessions.Revisions(sid); n != 2 {
		t.Errorf("%d revisions stored, want 2 (the start and the other worker's)", n)
	}
	if n := len(e.pub.OfType(domain.EventSessionUpdated)); n != 0 {
		t.Errorf("%d session.updated events got out", n)
	}
}

// hookPublisher runs hook once, before publishing the first event of type
// on.
type hookPublisher struct {
	*fakePublisher
	on   string
	hook func()
	once sync.Once
}

func (h *hookPublisher) PublishEvent(ctx context.Context, ev domain.Event) error {
	if ev.Type == h.on {
		h.once.Do(h.hook)
	}
	return h.fakePublisher.PublishEvent(ctx, ev)
}

// jwtSession decodes the session a session JWT carries (its signature is
// the issuer's; this reads the payload only).
func jwtSession(t *testing.T, jwt string) domain.Session {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	var s domain.Session
	if err := json.Unmarshal(claims[domain.SessionClaim], &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAttestMintsTheJWTFromTheViewsNewerRevision: while attest completes
// a new session, another worker's extension of it (revision 2) reaches the
// view. The reply's session JWT carries the revision the view holds, not
// the one the request made (the JWT is minted from the request's own
// revision only while the view holds exactly that one). (Mutant view.go
// holdsActive: r.revision == rev.)
func TestAttestMintsTheJWTFromTheViewsNewerRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	var extended domain.SessionState
	pub := &hookPublisher{fakePublisher: e.pub, on: domain.EventSessionCreated, hook: func() {
		sts := e.view.SessionsOfUser("user-ada")
		if len(sts) != 1 {
			t.Errorf("view holds %d sessions of ada, want 1", len(sts))
			return
		}
		extended = sts[0]
		extended.Revision++
		extended.Session.ExpiresAt = extended.Session.ExpiresAt.Add(time.Hour)
		if _, _, err := e.sessions.InsertRevision(ctx, extended, "svc#other-worker"); err != nil {
			t.Error(err)
		}
		e.view.PutSession(extended)
	}}
	a := &handlers.Attest{
		View: e.view, Barrier: e.barrier, Keys: fakeKeys{}, Replays: e.replays, Sessions: e.sessions, Revisions: e.sessions, Users: e.users,
		Pub: pub, Done: &handlers.Completer{Outcomes: e.outcomes, Pub: pub},
		Issuer: e.issuer, Now: e.clock.Now, Skew: testSkew, MaxTokenBytes: domain.DefaultMaxTokenBytes,
	}
	tok, _ := e.token(t, "ada@example.com", e.clock.Now())
	data, _ := json.Marshal(map[string]any{"profile_id": e.profile.ProfileID, "request_id": "start", "token": tok, "session_duration_minutes": 60})
	out, err := a.Handle(ctx, handlers.Input{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	var r handlers.AttestReply
	if err := json.Unmarshal(out.Reply, &r); err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 200 || r.Session == nil || r.SessionJWT == "" {
		t.Fatalf("attest: %+v", r)
	}
	if extended.Revision != 2 {
		t.Fatalf("the extension was not applied during the request (revision %d)", extended.Revision)
	}
	if s := jwtSession(t, r.SessionJWT); !s.ExpiresAt.Equal(extended.Session.ExpiresAt) {
		t.Errorf("session JWT carries a session expiring at %v, want the view's revision 2 (%v)", s.ExpiresAt, extended.Session.ExpiresAt)
	}
}

// TestRevokePublishesOnceEvenWithItsContextDone: a revocation whose
// request context has ended by the time its revision is stored still tries
// to publish its session.revoked once (the backoff, and its check of the
// context, only come before a retry). Sixteen revocations, each answered
// 200 with its event out. (Mutant revoke.go publishRetrying: attempt > 0;
// the mutant lets a select choose between the done context and a zero
// wait, so one revocation in two would fail under it.)
func TestRevokePublishesOnceEvenWithItsContextDone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 16 {
		s := e.startSession(t, fmt.Sprintf("start-%d", i), "ada@example.com")
		data, _ := json.Marshal(map[string]any{"session_token": s.SessionToken})
		r := e.svc.AdminRevoke(done, data)
		if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != s.Session.SessionID {
			t.Fatalf("revocation %d with its context done: %+v", i, r)
		}
	}
	if n := len(e.pub.OfType(domain.EventSessionRevoked)); n != 16 {
		t.Errorf("%d session.revoked events, want 16", n)
	}
}
