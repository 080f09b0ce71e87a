package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

var _ handlers.RevisionReader = (*fakeSessions)(nil)

var errPublishRefused = errors.New("fake publisher: refused")

// refuseType makes publishing events of type typ fail ("" for none).
func (f *fakePublisher) refuseType(typ string) {
	f.mu.Lock()
	f.refuse = typ
	f.mu.Unlock()
}

func (f *fakeSessions) RevisionBy(_ context.Context, sessionID, requestID string) (domain.SessionState, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var latest domain.SessionState
	found := false
	for _, r := range f.revs {
		if r.st.Session.SessionID == sessionID && r.by == requestID && (!found || r.st.Revision > latest.Revision) {
			latest, found = r.st, true
		}
	}
	return latest, found, nil
}

// latest returns the latest stored revision of every session.
func (f *fakeSessions) latest() map[string]domain.SessionState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]domain.SessionState{}
	for _, r := range f.revs {
		if cur, ok := out[r.st.Session.SessionID]; !ok || r.st.Revision > cur.Revision {
			out[r.st.Session.SessionID] = r.st
		}
	}
	return out
}

// user returns the stored state of user id.
func (f *fakeUsers) user(id string) (domain.User, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	su, ok := f.users[id]
	return su.u, ok && !su.deleted
}

// deliver runs the deliveries of one message as the worker would: the
// first, then redeliveries, each a transient failure; it returns the
// input of the last one.
func (e *env) deliver(t testing.TB, in handlers.Input, payload map[string]any, times int) handlers.Input {
	t.Helper()
	if _, ok := payload["profile_id"]; !ok {
		payload["profile_id"] = e.profile.ProfileID
	}
	in.Data, _ = json.Marshal(payload)
	for i := range times {
		in.Redelivered = i > 0
		if _, err := e.attest.Handle(context.Background(), in); err == nil {
			t.Fatalf("delivery %d succeeded; the test needs it to fail", i+1)
		} else {
			t.Logf("delivery %d: %v", i+1, err)
		}
	}
	return in
}

// wantAllAnnounced checks the rule this file is about: every session the
// store holds is named, at its latest revision, by a session.created or
// session.updated event (a revocation by session.revoked), and every user
// the store holds that no test put there by hand has a user.created.
func (e *env) wantAllAnnounced(t testing.TB, seeded ...string) {
	t.Helper()
	named := map[string]int64{}
	for _, ev := range e.pub.Events() {
		switch ev.Type {
		case domain.EventSessionCreated, domain.EventSessionUpdated:
			var d handlers.AttestEventData
			_ = json.Unmarshal(ev.Data, &d)
			if d.Session != nil && d.SessionRevision > named[d.Session.SessionID] {
				named[d.Session.SessionID] = d.SessionRevision
			}
		case domain.EventSessionRevoked:
			var d handlers.SessionRevokedData
			_ = json.Unmarshal(ev.Data, &d)
			if d.SessionRevision > named[d.SessionID] {
				named[d.SessionID] = d.SessionRevision
			}
		}
	}
	for id, st := range e.sessions.latest() {
		if named[id] != st.Revision {
			t.Errorf("session %s is stored at revision %d, its events name revision %d", id, st.Revision, named[id])
		}
	}
	created := map[string]bool{}
	for _, ev := range e.pub.OfType(domain.EventUserCreated) {
		created[ev.Subject] = true
	}
	for _, id := range seeded {
		created[id] = true
	}
	e.users.mu.Lock()
	defer e.users.mu.Unlock()
	for id := range e.users.users {
		if !created[id] {
			t.Errorf("user %s is stored without a user.created", id)
		}
	}
}

// TestAbandonAnnouncesTheSessionItStored is the regression test of a
// session left live with no event: the store fails after the request
// stored its session revision and before its outcome, for every delivery.
// Abandon, once the store is back, finishes the request as the session's
// session.created (or session.updated for an attach), rebuilt from the
// stored revision, instead of internal_server_error with the session left
// unannounced. While the store is still down it fails (the worker retries)
// and publishes nothing.
func TestAbandonAnnouncesTheSessionItStored(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		attach string // "": a new session; else by session_token or session_jwt
	}{
		{name: "new session"},
		{name: "attach by session_token", attach: "session_token"},
		{name: "attach by session_jwt", attach: "session_jwt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			payload := map[string]any{"request_id": "lost", "session_duration_minutes": 30}
			wantType := domain.EventSessionCreated
			tok, jti := e.token(t, "ada@example.com", t0)
			payload["token"] = tok
			sid := startedSessionID("lost", tok)
			if tc.attach != "" {
				start := e.startSession(t, "start", "ada@example.com")
				if tc.attach == "session_token" {
					payload[tc.attach] = start.SessionToken
				} else {
					payload[tc.attach] = start.SessionJWT
				}
				wantType, sid = domain.EventSessionUpdated, start.Session.SessionID
			}

			e.outcomes.down.Store(true)
			in := e.deliver(t, at("TAT_ATTEST", 7), payload, 3)
			// (An attach stores one more revision on each delivery, each on
			// top of the one before: the latest is the one to announce.)
			wantRev := e.sessions.latest()[sid].Revision
			left, ok, _ := e.sessions.RevisionBy(context.Background(), sid, "lost")
			if !ok || left.Revision != wantRev || len(e.eventsFor("lost")) != 0 {
				t.Fatalf("precondition: the request stored revision %d of %s (%v) and no event yet (%d)", wantRev, sid, ok, len(e.eventsFor("lost")))
			}

			calls := e.pub.calls.Load()
			if _, err := e.attest.Abandon(context.Background(), in, errors.New("deliveries exhausted")); err == nil {
				t.Fatal("Abandon with the store down succeeded")
			}
			if n := e.pub.calls.Load() - calls; n != 0 {
				t.Fatalf("Abandon with the store down published %d events", n)
			}

			e.outcomes.down.Store(false)
			e.clock.Set(t0.Add(2 * time.Minute))
			out, err := e.attest.Abandon(context.Background(), in, errors.New("deliveries exhausted"))
			if err != nil {
				t.Fatal(err)
			}
			var r handlers.AttestReply
			_ = json.Unmarshal(out.Reply, &r)
			if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != sid || r.SessionToken == "" || r.User == nil {
				t.Fatalf("Abandon's reply: %+v", r)
			}
			evs := e.eventsFor("lost")
			if len(evs) != 1 || evs[0].Type != wantType {
				t.Fatalf("events for the request: %+v, want one %s", evs, wantType)
			}
			var d handlers.AttestEventData
			_ = json.Unmarshal(evs[0].Data, &d)
			if d.Session == nil || d.Session.SessionID != sid || d.SessionRevision != wantRev || d.TokenID != jti ||
				d.UserID != "user-ada" || d.StreamSeq != 7 || d.Stream != "TAT_ATTEST" || d.ErrorType != "" || evs[0].Subject != sid {
				t.Errorf("%s data: %+v (subject %s)", wantType, d, evs[0].Subject)
			}
			if st, ok := e.view.Session(sid); !ok || st.Revision != wantRev {
				t.Errorf("the view holds %+v (%v)", st, ok)
			}
			e.wantAllAnnounced(t, "user-ada")

			// A later copy of the request: the rebuilt outcome, without
			// secrets, and its own attest.repeated.
			again := e.attestReply(t, at("TAT_ATTEST", 8), payload)
			if again.StatusCode != 200 || again.Session == nil || again.Session.SessionID != sid || again.SessionToken != "" || again.SessionJWT != "" {
				t.Errorf("a copy after Abandon: %+v", again)
			}
			if n := len(e.pub.OfType(domain.EventAttestRepeated)); n != 1 {
				t.Errorf("%d attest.repeated", n)
			}
		})
	}
}

// TestAbandonAnnouncesTheJITUserItStored: a user made just in time whose
// user.created could not be published on any delivery (the user is in the
// store) is announced when the request is given up, once, before the
// request's outcome (internal_server_error: the request got no further).
func TestAbandonAnnouncesTheJITUserItStored(t *testing.T) {
	t.Parallel()
	for _, minutes := range []int{0, 30} {
		t.Run(fmt.Sprintf("session_duration_minutes=%d", minutes), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			tok, _ := e.token(t, "New@Example.com", t0)
			payload := map[string]any{"request_id": "jit-lost", "token": tok}
			if minutes > 0 {
				payload["session_duration_minutes"] = minutes
			}
			jitID := domain.JITUserID("new@example.com")
			e.pub.refuseType(domain.EventUserCreated)
			in := e.deliver(t, at("TAT_ATTEST", 3), payload, 3)
			if _, ok := e.users.user(jitID); !ok || len(e.pub.OfType(domain.EventUserCreated)) != 0 {
				t.Fatalf("precondition: the JIT user is stored and unannounced")
			}

			e.pub.refuseType("")
			out, err := e.attest.Abandon(context.Background(), in, errors.New("deliveries exhausted"))
			if err != nil {
				t.Fatal(err)
			}
			var r handlers.AttestReply
			_ = json.Unmarshal(out.Reply, &r)
			users := e.pub.OfType(domain.EventUserCreated)
			if len(users) != 1 || users[0].Subject != jitID {
				t.Fatalf("user.created events: %+v", users)
			}
			if u, ok := e.view.User(jitID); !ok || u.Version != 1 {
				t.Errorf("the view holds %+v (%v)", u, ok)
			}
			// The request never got past provisioning, so it stored no
			// session: it ends in internal_server_error.
			e.wantRefused(t, "jit-lost", r, domain.ErrInternal)
			if n := e.sessions.Count(); n != 0 {
				t.Errorf("%d session revisions stored", n)
			}
			all := e.pub.Events()
			if all[0].Type != domain.EventUserCreated {
				t.Errorf("the first event is %s, want the user.created before the outcome", all[0].Type)
			}
			e.wantAllAnnounced(t)
		})
	}
}

// TestAbandonStoresNothingNew: a request given up before any write (the
// store was down from the start) ends in attest.failed, and Abandon
// creates no session and no user of its own.
func TestAbandonStoresNothingNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	tok, _ := e.token(t, "someone@example.com", t0)
	data, _ := json.Marshal(map[string]any{"request_id": "never", "profile_id": e.profile.ProfileID, "token": tok, "session_duration_minutes": 30})
	out, err := e.attest.Abandon(context.Background(), handlers.Input{Data: data, Stream: "TAT_ATTEST", StreamSeq: 9, Redelivered: true}, errors.New("deliveries exhausted"))
	if err != nil {
		t.Fatal(err)
	}
	var r handlers.AttestReply
	_ = json.Unmarshal(out.Reply, &r)
	e.wantRefused(t, "never", r, domain.ErrInternal)
	if users, _ := e.users.Stored(); users != 0 || e.sessions.Count() != 0 {
		t.Fatalf("Abandon stored %d users and %d session revisions", users, e.sessions.Count())
	}
}

// TestRedeliveryAnnouncesJITUserLoadedFromStore: a worker restarted after
// an earlier delivery stored a JIT user but before it published its
// user.created loads that user from the store into its view, so the
// redelivery finds the user and would never provision (nor announce) it.
// The redelivery finishes the recorded user.created first.
func TestRedeliveryAnnouncesJITUserLoadedFromStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	tok, _ := e.token(t, "restart@example.com", t0)
	payload := map[string]any{"request_id": "jit-restart", "token": tok}
	e.pub.refuseType(domain.EventUserCreated)
	in := e.deliver(t, at("TAT_ATTEST", 4), payload, 1)
	jitID := domain.JITUserID("restart@example.com")
	u, ok := e.users.user(jitID)
	if !ok {
		t.Fatal("precondition: the JIT user is stored")
	}
	e.view.PutUser(u, false) // the restarted worker's snapshot
	e.pub.refuseType("")

	in.Redelivered = true
	r := e.attestReply(t, in, payload)
	if r.StatusCode != 200 || r.UserID != jitID {
		t.Fatalf("redelivery: %+v", r)
	}
	if n := len(e.pub.OfType(domain.EventUserCreated)); n != 1 {
		t.Fatalf("%d user.created events, want 1", n)
	}
	e.wantAllAnnounced(t)
}

// startedSessionID is the id a request starts a session under (as
// handlers derives it).
func startedSessionID(id, token string) string {
	sum := sha256.Sum256([]byte(token))
	return domain.SessionIDPrefix + domain.DerivedUUID("session", id, hex.EncodeToString(sum[:]))
}

// TestJITUserChangedBetweenDeliveries: a retry finds its first delivery's
// recorded JIT user; if an admin deleted that user in between, the retry
// announces the recorded user.created (the store holds it) and refuses the
// request (user_not_found) instead of using the deleted user.
func TestJITUserChangedBetweenDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	tok, _ := e.token(t, "gone@example.com", t0)
	payload := map[string]any{"request_id": "jit-gone", "token": tok, "session_duration_minutes": 30}
	e.pub.refuseType(domain.EventUserCreated)
	in := e.deliver(t, at("TAT_ATTEST", 2), payload, 1)
	jitID := domain.JITUserID("gone@example.com")
	u, ok := e.users.user(jitID)
	if !ok {
		t.Fatal("precondition: the JIT user is stored")
	}
	u.Version++
	e.view.PutUser(u, true) // deleted by an admin
	e.pub.refuseType("")

	in.Redelivered = true
	r := e.attestReply(t, in, payload)
	e.wantRefused(t, "jit-gone", r, domain.ErrUserNotFound)
	if n := len(e.pub.OfType(domain.EventUserCreated)); n != 1 || e.sessions.Count() != 0 {
		t.Fatalf("%d user.created, %d session revisions", n, e.sessions.Count())
	}
}
