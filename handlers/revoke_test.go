package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// lateBarrier is a Barrier whose first catch-up brings in what another
// worker did a moment ago (arrive), as the events stream would.
type lateBarrier struct {
	calls  atomic.Int64
	arrive func()
	once   sync.Once
}

func (b *lateBarrier) CatchUp(context.Context) error {
	b.calls.Add(1)
	if b.arrive != nil {
		b.once.Do(b.arrive)
	}
	return nil
}

// revokedEvents returns the session.revoked events published, by session
// id.
func revokedEvents(t *testing.T, e *env) map[string][]handlers.SessionRevokedData {
	t.Helper()
	out := map[string][]handlers.SessionRevokedData{}
	for _, ev := range e.pub.OfType(domain.EventSessionRevoked) {
		var d handlers.SessionRevokedData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if ev.Subject != d.SessionID || d.Session == nil || d.Session.SessionID != d.SessionID {
			t.Fatalf("revoked event names two sessions: %+v", ev)
		}
		out[d.SessionID] = append(out[d.SessionID], d)
	}
	return out
}

// revoke sends one tat.sessions.admin.revoke request (the endpoint that
// takes every form: session_id, session_token, session_jwt, user_id).
func revoke(t *testing.T, svc *handlers.Sessions, payload any) handlers.SessionReply {
	t.Helper()
	data, _ := json.Marshal(payload)
	return svc.AdminRevoke(context.Background(), data)
}

// wantEnded checks that each session in ended is revoked in the view, has
// exactly 2 revisions stored (started, revoked) and exactly one
// session.revoked event at revision 2; and that each in kept is active,
// with one revision and no event.
func wantEnded(t *testing.T, e *env, ended, kept []string) {
	t.Helper()
	evs := revokedEvents(t, e)
	for _, id := range ended {
		st, ok := e.view.Session(id)
		if !ok || !st.Revoked || st.Revision != 2 {
			t.Errorf("session %s in the view: %+v, want revoked at revision 2", id, st)
		}
		if n := e.sessions.Revisions(id); n != 2 {
			t.Errorf("session %s: %d revisions stored, want 2", id, n)
		}
		if d := evs[id]; len(d) != 1 || d[0].SessionRevision != 2 || d[0].UserID != st.Session.UserID {
			t.Errorf("session %s: revoked events %+v, want one at revision 2", id, d)
		}
	}
	for _, id := range kept {
		st, _ := e.view.Session(id)
		if !st.Active(e.clock.Now()) || e.sessions.Revisions(id) != 1 || len(evs[id]) != 0 {
			t.Errorf("session %s was touched: %+v, %d revisions, %d events", id, st, e.sessions.Revisions(id), len(evs[id]))
		}
	}
}

// authenticates reports whether a session token still authenticates.
func authenticates(e *env, token string) bool {
	data, _ := json.Marshal(map[string]any{"session_token": token})
	return e.svc.Authenticate(context.Background(), data).StatusCode == 200
}

// sessionsFixture is ada with three sessions and grace with one.
type sessionsFixture struct {
	e        *env
	ada      domain.User
	sessions map[string]handlers.AttestReply // by request id
}

func newSessionsFixture(t *testing.T) *sessionsFixture {
	t.Helper()
	e := newEnv(t, false)
	f := &sessionsFixture{e: e, sessions: map[string]handlers.AttestReply{}}
	f.ada = e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	e.addUser(t, "user-grace", "grace@example.com", domain.UserActive)
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		f.sessions[id] = e.startSession(t, id, "ada@example.com")
	}
	f.sessions["g-1"] = e.startSession(t, "g-1", "grace@example.com")
	return f
}

func (f *sessionsFixture) id(reqID string) string { return f.sessions[reqID].Session.SessionID }

func TestRevokeByUserID(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	// One of ada's sessions revoked already, one expired: neither gets a
	// second revision.
	if r := revoke(t, e.svc, map[string]any{"session_id": f.id("a-1")}); r.StatusCode != 200 {
		t.Fatalf("revoke a-1: %+v", r)
	}
	tok, _ := e.token(t, "ada@example.com", e.clock.Now())
	short := e.attestReply(t, handlers.Input{}, map[string]any{"request_id": "a-short", "token": tok, "session_duration_minutes": 5})
	e.clock.Set(t0.Add(10 * time.Minute))
	before := len(e.pub.Events())
	catchUps := e.barrier.calls.Load()

	r := revoke(t, e.svc, map[string]any{"user_id": "user-ada"})
	want := []string{f.id("a-2"), f.id("a-3")}
	slices.Sort(want)
	if r.StatusCode != 200 || r.RevokedSessionIDs == nil || !slices.Equal(*r.RevokedSessionIDs, want) {
		t.Fatalf("revoke user-ada: %+v, want revoked %v", r, want)
	}
	if r.Session != nil || r.User != nil || r.SessionToken != "" || r.SessionJWT != "" {
		t.Errorf("revoke by user_id answers more than the ids: %+v", r)
	}
	if e.barrier.calls.Load() == catchUps {
		t.Error("revoke by user_id did not catch the view up first")
	}
	if n := len(e.pub.Events()) - before; n != 2 {
		t.Errorf("%d events, want one session.revoked per active session (2)", n)
	}
	wantEnded(t, e, append(want, f.id("a-1")), []string{f.id("g-1")})
	if n := e.sessions.Revisions(short.Session.SessionID); n != 1 {
		t.Errorf("the expired session got %d revisions, want 1", n)
	}
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		if authenticates(e, f.sessions[id].SessionToken) {
			t.Errorf("%s still authenticates", id)
		}
	}
	if !authenticates(e, f.sessions["g-1"].SessionToken) {
		t.Error("grace's session ended with ada's")
	}

	// Repeated: 200, nothing revoked, nothing written or published.
	before, revs := len(e.pub.Events()), e.sessions.Count()
	r = revoke(t, e.svc, map[string]any{"user_id": "user-ada"})
	if r.StatusCode != 200 || r.RevokedSessionIDs == nil || len(*r.RevokedSessionIDs) != 0 {
		t.Fatalf("repeat: %+v", r)
	}
	if len(e.pub.Events()) != before || e.sessions.Count() != revs {
		t.Errorf("a repeat published %d events and stored %d revisions", len(e.pub.Events())-before, e.sessions.Count()-revs)
	}
	wire, _ := json.Marshal(r)
	if string(wire) != `{"status_code":200,"revoked_session_ids":[]}` {
		t.Errorf("repeat on the wire: %s", wire)
	}
}

func TestRevokeByUserIDArguments(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	tok := f.sessions["a-1"].SessionToken
	for name, tc := range map[string]struct {
		payload any
		want    *domain.Error
	}{
		"user_id and session_id":    {map[string]any{"user_id": "user-ada", "session_id": f.id("a-1")}, domain.ErrInvalidRequest},
		"user_id and session_token": {map[string]any{"user_id": "user-grace", "session_token": tok}, domain.ErrInvalidRequest},
		"user_id and session_jwt":   {map[string]any{"user_id": "user-ada", "session_jwt": f.sessions["a-1"].SessionJWT}, domain.ErrInvalidRequest},
		"none":                      {map[string]any{}, domain.ErrInvalidRequest},
		"empty user_id":             {map[string]any{"user_id": ""}, domain.ErrInvalidRequest},
		"user_id outside alphabet":  {map[string]any{"user_id": "user-*"}, domain.ErrInvalidRequest},
		"user_id as a list":         {map[string]any{"user_id": []string{"user-ada"}}, domain.ErrInvalidRequest},
		"email instead of user_id":  {map[string]any{"email": "ada@example.com"}, domain.ErrInvalidRequest},
		"a user that never existed": {map[string]any{"user_id": "user-nobody"}, domain.ErrUserNotFound},
	} {
		r := revoke(t, e.svc, tc.payload)
		if r.StatusCode != tc.want.Status || r.ErrorType != tc.want.Code || r.RevokedSessionIDs != nil {
			t.Errorf("%s: %+v, want %s", name, r, tc.want.Code)
		}
	}
	if n := len(revokedEvents(t, e)); n != 0 {
		t.Fatalf("refused revokes published %d session.revoked events", n)
	}
	// A user with no session: 200, nothing revoked.
	e.addUser(t, "user-lone", "lone@example.com", domain.UserActive)
	if r := revoke(t, e.svc, map[string]any{"user_id": "user-lone"}); r.StatusCode != 200 || len(*r.RevokedSessionIDs) != 0 {
		t.Fatalf("user without sessions: %+v", r)
	}
	// A user deleted without its sessions ending (before this worker ended
	// them on delete) still has them revoked by user_id.
	deleteUser(e, f.ada)
	r := revoke(t, e.svc, map[string]any{"user_id": "user-ada"})
	if r.StatusCode != 200 || len(*r.RevokedSessionIDs) != 3 {
		t.Fatalf("revoke a deleted user's sessions: %+v", r)
	}
	wantEnded(t, e, []string{f.id("a-1"), f.id("a-2"), f.id("a-3")}, []string{f.id("g-1")})
}

// TestRevokeByUserIDSeesSessionsOfOtherWorkers: a session another worker
// started a moment ago (stored, its event not yet applied here) is revoked
// too: the view catches up before the sessions are listed.
func TestRevokeByUserIDSeesSessionsOfOtherWorkers(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	s := domain.NewSession("session-elsewhere", "user-ada", domain.FactorEvidence{ProfileID: e.profile.ProfileID, TokenID: "j-1"}, nil, t0, 60)
	st := domain.SessionState{Session: s, Revision: 1}
	if _, _, err := e.sessions.InsertRevision(context.Background(), st, "other-worker-attest"); err != nil {
		t.Fatal(err)
	}
	b := &lateBarrier{arrive: func() { e.view.PutSession(st) }}
	svc := &handlers.Sessions{View: e.view, Barrier: b, Sessions: e.sessions, Pub: e.pub, Issuer: e.issuer, Now: e.clock.Now}
	r := revoke(t, svc, map[string]any{"user_id": "user-ada"})
	if r.StatusCode != 200 || !slices.Contains(*r.RevokedSessionIDs, "session-elsewhere") || len(*r.RevokedSessionIDs) != 4 {
		t.Fatalf("revoke user-ada: %+v", r)
	}
	wantEnded(t, e, []string{"session-elsewhere", f.id("a-1"), f.id("a-2"), f.id("a-3")}, []string{f.id("g-1")})
}

// flakyPublisher fails the publication of events that fail selects, as
// JetStream out of reach would.
type flakyPublisher struct {
	*fakePublisher
	fail  func(domain.Event) bool
	tries atomic.Int64
}

func (p *flakyPublisher) PublishEvent(ctx context.Context, e domain.Event) error {
	p.tries.Add(1)
	if p.fail(e) {
		return errors.New("events stream unreachable")
	}
	return p.fakePublisher.PublishEvent(ctx, e)
}

// TestRevokeFinishesARevocationWhoseEventFailed: a revoke whose revision
// was stored but whose event could not be published answers 500 and is
// not applied; the caller's retry (a new request) finds the revision and
// publishes its one event, instead of answering 200 with the session still
// active in every other worker's view. No third revision is written.
func TestRevokeFinishesARevocationWhoseEventFailed(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	var down atomic.Bool
	down.Store(true)
	pub := &flakyPublisher{fakePublisher: e.pub, fail: func(domain.Event) bool { return down.Load() }}
	svc := &handlers.Sessions{View: e.view, Barrier: e.barrier, Sessions: e.sessions, Pub: pub, Issuer: e.issuer, Now: e.clock.Now}
	for _, by := range []map[string]any{
		{"session_id": f.id("a-1")},
		{"user_id": "user-grace"},
	} {
		if r := revoke(t, svc, by); r.StatusCode != 500 || r.ErrorType != domain.ErrInternal.Code {
			t.Fatalf("revoke %v with the stream down: %+v", by, r)
		}
	}
	for _, id := range []string{f.id("a-1"), f.id("g-1")} {
		if st, _ := e.view.Session(id); st.Revoked {
			t.Fatalf("a revocation whose event failed is applied to the view: %+v", st)
		}
		if n := e.sessions.Revisions(id); n != 2 {
			t.Fatalf("%d revisions, want the revoked one stored", n)
		}
	}
	down.Store(false)
	if r := revoke(t, svc, map[string]any{"session_id": f.id("a-1")}); r.StatusCode != 200 {
		t.Fatalf("retry by session_id: %+v", r)
	}
	if r := revoke(t, svc, map[string]any{"user_id": "user-grace"}); r.StatusCode != 200 {
		t.Fatalf("retry by user_id: %+v", r)
	}
	wantEnded(t, e, []string{f.id("a-1"), f.id("g-1")}, []string{f.id("a-2"), f.id("a-3")})
}

// TestRevokeLeavesAttestRevisionsToAttest: a revision the view lacks that
// an attest request wrote (its request id chosen by a publisher, even one
// that looks like the sessions service's) is built on, never published by
// the sessions service: attest publishes its own events.
func TestRevokeLeavesAttestRevisionsToAttest(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	st, _ := e.view.Session(f.id("a-1"))
	next := st
	next.Revision = 2
	next.Session.CustomClaims = map[string]any{"plan": "pro"}
	if _, _, err := e.sessions.InsertRevision(context.Background(), next, "svc:forged"); err != nil {
		t.Fatal(err)
	}
	if r := revoke(t, e.svc, map[string]any{"session_id": f.id("a-1")}); r.StatusCode != 200 {
		t.Fatalf("revoke: %+v", r)
	}
	if n := len(e.pub.OfType(domain.EventSessionUpdated)); n != 0 {
		t.Fatalf("the sessions service published %d session.updated events for an attest's revision", n)
	}
	evs := revokedEvents(t, e)[f.id("a-1")]
	if len(evs) != 1 || evs[0].SessionRevision != 3 || evs[0].Session.CustomClaims["plan"] != "pro" {
		t.Fatalf("revoked events %+v, want one at revision 3 built on the attest's revision", evs)
	}
}

// TestConcurrentRevokesPublishOneEvent: revokes of one session racing on
// two workers (by id, and by user) store one revoked revision and publish
// one session.revoked event; the loser answers 200.
func TestConcurrentRevokesPublishOneEvent(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		f := newSessionsFixture(t)
		e := f.e
		// Two workers: two views over one store and one stream.
		other := handlers.NewView(func(id string) string { return e.issuer.SessionToken(id).Reveal() })
		for _, id := range []string{"a-1", "a-2", "a-3", "g-1"} {
			st, _ := e.view.Session(f.id(id))
			other.PutSession(st)
		}
		u, _ := e.view.User("user-ada")
		other.PutUser(u, false)
		svc2 := &handlers.Sessions{View: other, Barrier: e.barrier, Sessions: e.sessions, Pub: e.pub, Issuer: e.issuer, Now: e.clock.Now}
		var wg sync.WaitGroup
		replies := make([]handlers.SessionReply, 3)
		wg.Add(3)
		go func() { defer wg.Done(); replies[0] = revoke(t, e.svc, map[string]any{"session_id": f.id("a-1")}) }()
		go func() { defer wg.Done(); replies[1] = revoke(t, svc2, map[string]any{"session_id": f.id("a-1")}) }()
		go func() { defer wg.Done(); replies[2] = revoke(t, svc2, map[string]any{"user_id": "user-ada"}) }()
		wg.Wait()
		for i, r := range replies {
			if r.StatusCode != 200 {
				t.Fatalf("round %d: revoke %d: %+v", round, i, r)
			}
		}
		evs := revokedEvents(t, e)
		for _, id := range []string{"a-1", "a-2", "a-3"} {
			if n := len(evs[f.id(id)]); n != 1 {
				t.Fatalf("round %d: %s has %d session.revoked events, want 1", round, id, n)
			}
			if n := e.sessions.Revisions(f.id(id)); n != 2 {
				t.Fatalf("round %d: %s has %d revisions, want 2", round, id, n)
			}
		}
	}
}

// userChange is a UserChange on e's fakes that ends sessions through
// e.svc, applying its events to e's view as the worker does.
func userChange(e *env, pub handlers.Publisher) *handlers.UserChange {
	if pub == nil {
		pub = e.pub
	}
	done := &handlers.Completer{Outcomes: e.outcomes, Pub: pub, Apply: func(ev domain.Event) { _ = e.view.ApplyEvent(0, ev) }}
	h := handlers.NewUserChange(e.view, e.barrier, done, e.clock.Now, e.users)
	h.Sessions = e.svc
	return h
}

// userCommand runs one user command as the admin consumer delivers it.
func userCommand(t *testing.T, h *handlers.UserChange, cmd map[string]any) (map[string]any, error) {
	t.Helper()
	data, _ := json.Marshal(cmd)
	out, err := h.Handle(context.Background(), handlers.Input{Data: data})
	if err != nil {
		return nil, err
	}
	var reply map[string]any
	if err := json.Unmarshal(out.Reply, &reply); err != nil {
		t.Fatal(err)
	}
	return reply, nil
}

func adaSpec(status string) map[string]any {
	return map[string]any{"user_id": "user-ada", "status": status, "emails": []any{map[string]any{"email": "ada@example.com", "verified": true}}}
}

// TestUserDeleteOrDisableEndsSessions: a user command that deletes the
// user or leaves it not active revokes each of its active sessions (one
// revision, one session.revoked event each, the view updated, no session
// token authenticates); a change that leaves it active touches none; a
// repeat of the command (same change_id) changes nothing more.
func TestUserDeleteOrDisableEndsSessions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		cmd   map[string]any
		ends  bool
		event string
	}{
		{"delete", map[string]any{"change_id": "c-del", "op": "delete", "user_id": "user-ada"}, true, domain.EventUserDeleted},
		{"disable", map[string]any{"change_id": "c-dis", "op": "upsert", "user": adaSpec(domain.UserDisabled)}, true, domain.EventUserUpdated},
		{"pending", map[string]any{"change_id": "c-pen", "op": "upsert", "user": adaSpec(domain.UserPending)}, true, domain.EventUserUpdated},
		{"rename, still active", map[string]any{"change_id": "c-ren", "op": "upsert", "user": func() map[string]any {
			s := adaSpec(domain.UserActive)
			s["name"] = map[string]any{"first_name": "Augusta"}
			return s
		}()}, false, domain.EventUserUpdated},
		{"refused change", map[string]any{"change_id": "c-bad", "op": "upsert", "user": adaSpec("banned")}, false, domain.EventUserRejected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSessionsFixture(t)
			e := f.e
			h := userChange(e, nil)
			ada := []string{f.id("a-1"), f.id("a-2"), f.id("a-3")}
			for range 2 { // the command, then the same command again
				if _, err := userCommand(t, h, tc.cmd); err != nil {
					t.Fatalf("user command: %v", err)
				}
				if n := len(e.pub.OfType(tc.event)); n != 1 {
					t.Fatalf("%d %s events, want 1", n, tc.event)
				}
				if tc.ends {
					wantEnded(t, e, ada, []string{f.id("g-1")})
				} else {
					wantEnded(t, e, nil, append(ada, f.id("g-1")))
				}
				if len(e.pub.Events()) != 4+1+map[bool]int{true: 3}[tc.ends] {
					t.Fatalf("%d events in all: %v", len(e.pub.Events()), e.pub.Events())
				}
			}
			for _, id := range []string{"a-1", "a-2", "a-3"} {
				if authenticates(e, f.sessions[id].SessionToken) == tc.ends {
					t.Errorf("%s authenticates: %v", id, !tc.ends)
				}
			}
		})
	}
}

// TestUserChangeEndingSessionsIsFinishedByRedelivery: when the events
// stream fails half way through ending a deleted user's sessions, the
// command fails transiently; its redelivery ends the rest and publishes the
// missing events, with no session revoked twice and no extra revision.
func TestUserChangeEndingSessionsIsFinishedByRedelivery(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	ada := []string{f.id("a-1"), f.id("a-2"), f.id("a-3")}
	slices.Sort(ada)
	var revokedOK atomic.Int64
	var down atomic.Bool
	pub := &flakyPublisher{fakePublisher: e.pub, fail: func(ev domain.Event) bool {
		// The stream goes down after the first revocation.
		if ev.Type != domain.EventSessionRevoked {
			return false
		}
		if down.Load() {
			return true
		}
		if revokedOK.Add(1) > 1 {
			down.Store(true)
			return true
		}
		return false
	}}
	e.svc.Pub = pub
	h := userChange(e, pub)
	cmd := map[string]any{"change_id": "c-del", "op": "delete", "user_id": "user-ada"}
	if _, err := userCommand(t, h, cmd); err == nil {
		t.Fatal("the command succeeded with the events stream down")
	}
	if n := len(revokedEvents(t, e)); n != 1 {
		t.Fatalf("%d sessions revoked before the stream went down, want 1", n)
	}
	if n := len(e.pub.OfType(domain.EventUserDeleted)); n != 1 {
		t.Fatalf("%d user.deleted events", n)
	}
	down.Store(false)
	revokedOK.Store(-100)
	reply, err := userCommand(t, h, cmd) // the redelivery
	if err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if reply["status_code"] != float64(200) {
		t.Fatalf("redelivery answered %v", reply)
	}
	wantEnded(t, e, ada, []string{f.id("g-1")})
	if n := len(e.pub.OfType(domain.EventUserDeleted)); n != 1 {
		t.Fatalf("%d user.deleted events after the redelivery", n)
	}
	// A third delivery finds every session ended: nothing more.
	before := len(e.pub.Events())
	if _, err := userCommand(t, h, cmd); err != nil || len(e.pub.Events()) != before {
		t.Fatalf("a third delivery: %v, %d new events", err, len(e.pub.Events())-before)
	}
}

// TestRepeatedDisableKeepsLaterSessions: a disable command repeated (same
// change_id) after the user was enabled again must not end the sessions
// the user started since: the repeat answers its first outcome, and only a
// user who is not active now loses sessions.
func TestRepeatedDisableKeepsLaterSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	first := e.startSession(t, "s-1", "ada@example.com")
	h := userChange(e, nil)
	disable := map[string]any{"change_id": "c-dis", "op": "upsert", "user": adaSpec(domain.UserDisabled)}
	for _, cmd := range []map[string]any{disable, {"change_id": "c-en", "op": "upsert", "user": adaSpec(domain.UserActive)}} {
		if r, err := userCommand(t, h, cmd); err != nil || r["status_code"] != float64(200) {
			t.Fatalf("%v: %v %v", cmd["change_id"], r, err)
		}
	}
	later := e.startSession(t, "s-2", "ada@example.com")
	if r, err := userCommand(t, h, disable); err != nil || r["user"].(map[string]any)["status"] != domain.UserDisabled {
		t.Fatalf("repeat of c-dis: %v %v", r, err)
	}
	wantEnded(t, e, []string{first.Session.SessionID}, []string{later.Session.SessionID})
	if !authenticates(e, later.SessionToken) {
		t.Fatal("the session started after the user was enabled again was ended by a repeat")
	}
}

// TestUserChangeEndsSessionsOfOtherWorkers: a session another worker
// started a moment ago is ended with the rest: the view catches up before
// the sessions are listed.
func TestUserChangeEndsSessionsOfOtherWorkers(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	e := f.e
	s := domain.NewSession("session-elsewhere", "user-ada", domain.FactorEvidence{ProfileID: e.profile.ProfileID, TokenID: "j-1"}, nil, t0, 60)
	st := domain.SessionState{Session: s, Revision: 1}
	if _, _, err := e.sessions.InsertRevision(context.Background(), st, "other-worker-attest"); err != nil {
		t.Fatal(err)
	}
	b := &lateBarrier{arrive: func() { e.view.PutSession(st) }}
	e.svc.Barrier = b
	h := userChange(e, nil)
	h.Barrier = b
	if _, err := userCommand(t, h, map[string]any{"change_id": "c-del", "op": "delete", "user_id": "user-ada"}); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, e, []string{"session-elsewhere", f.id("a-1"), f.id("a-2"), f.id("a-3")}, []string{f.id("g-1")})
}
