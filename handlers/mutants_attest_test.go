package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Tests of Attest through its exported API found missing by mutation
// testing (make mutate): request ids, what makes two messages the same
// request, Abandon of a request named by its stream position, and the
// store writes of a just-in-time user's announcement.

// rawAttest runs one attest request whose payload is data as sent.
func (e *env) rawAttest(t testing.TB, in handlers.Input, data string) handlers.AttestReply {
	t.Helper()
	in.Data = []byte(data)
	out, err := e.attest.Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("Handle returned a transient error: %v", err)
	}
	var r handlers.AttestReply
	if err := json.Unmarshal(out.Reply, &r); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, out.Reply)
	}
	return r
}

// TestAttestRefusesRequestIDOutsideAlphabet: a request_id that is not 1
// to 128 characters of A-Za-z0-9._:- is refused (invalid_request naming
// request_id); the request is not carried out under its stream position.
func TestAttestRefusesRequestIDOutsideAlphabet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	for i, id := range []string{"has space", "semi;colon", fmt.Sprintf("%0129d", 0)} {
		tok, _ := e.token(t, "ada@example.com", t0)
		r := e.attestReply(t, at("TAT_ATTEST", uint64(20+i)), map[string]any{"request_id": id, "token": tok, "session_duration_minutes": 30})
		if r.StatusCode != 400 || r.ErrorType != domain.ErrInvalidRequest.Code || r.Session != nil || r.SessionToken != "" {
			t.Errorf("request_id %q: %+v", id, r)
		}
	}
	if n := e.sessions.Count(); n != 0 {
		t.Errorf("%d session revisions stored", n)
	}
	if n := len(e.pub.OfType(domain.EventAttestFailed)); n != 3 {
		t.Errorf("%d attest.failed events, want 3", n)
	}
}

// TestAttestRepeatIsTheSameRequestHoweverEncoded: a second message with the
// request's id and the same content, its members in another order and
// spaced otherwise, is the same request: answered from the first outcome,
// its attest.repeated not flagged different_request.
func TestAttestRepeatIsTheSameRequestHoweverEncoded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	tok, _ := e.token(t, "ada@example.com", t0)
	first := e.rawAttest(t, at("TAT_ATTEST", 30), fmt.Sprintf(
		`{"request_id":"enc","profile_id":%q,"token":%q,"session_duration_minutes":30,"session_custom_claims":{"plan":"pro","n":1}}`,
		e.profile.ProfileID, tok))
	if first.StatusCode != 200 || first.Session == nil {
		t.Fatalf("first: %+v", first)
	}
	second := e.rawAttest(t, at("TAT_ATTEST", 31), fmt.Sprintf(
		"{ \"session_custom_claims\" : { \"plan\" : \"pro\",\n \"n\" : 1 },\n \"session_duration_minutes\": 30, \"token\": %q, \"profile_id\": %q, \"request_id\": \"enc\" }",
		tok, e.profile.ProfileID))
	if second.StatusCode != 200 || second.Session == nil || second.Session.SessionID != first.Session.SessionID {
		t.Fatalf("the same request, encoded otherwise: %+v", second)
	}
	reps := e.pub.OfType(domain.EventAttestRepeated)
	if len(reps) != 1 {
		t.Fatalf("%d attest.repeated events", len(reps))
	}
	if d := repeatedOf(t, reps[0]); d.DifferentRequest || d.StatusCode != 200 {
		t.Errorf("attest.repeated data %+v", d)
	}
	if n := e.sessions.Count(); n != 1 {
		t.Errorf("%d session revisions stored", n)
	}
}

// TestAbandonAnnouncesTheSessionOfARequestWithoutID: a request sent
// without request_id is named by its stream position; when it stored its
// session on every delivery but recorded no outcome, Abandon announces that
// session as for a request with an id.
func TestAbandonAnnouncesTheSessionOfARequestWithoutID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	tok, _ := e.token(t, "ada@example.com", t0)
	id := "#seq:41"
	sid := startedSessionID(id, tok)

	e.outcomes.down.Store(true)
	in := e.deliver(t, at("TAT_ATTEST", 41), map[string]any{"token": tok, "session_duration_minutes": 30}, 2)
	if _, ok, _ := e.sessions.RevisionBy(context.Background(), sid, id); !ok {
		t.Fatalf("precondition: the request stored session %s", sid)
	}
	e.outcomes.down.Store(false)

	out, err := e.attest.Abandon(context.Background(), in, errors.New("deliveries exhausted"))
	if err != nil {
		t.Fatal(err)
	}
	var r handlers.AttestReply
	_ = json.Unmarshal(out.Reply, &r)
	if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != sid {
		t.Fatalf("Abandon's reply: %+v", r)
	}
	if evs := e.pub.OfType(domain.EventSessionCreated); len(evs) != 1 || evs[0].Subject != sid {
		t.Errorf("session.created events: %+v", evs)
	}
	if n := len(e.pub.OfType(domain.EventAttestFailed)); n != 0 {
		t.Errorf("%d attest.failed events", n)
	}
	e.wantAllAnnounced(t, "user-ada")
}

// countingUsers counts the user writes that reach a fakeUsers.
type countingUsers struct {
	*fakeUsers
	inserts, puts atomic.Int64
}

func (c *countingUsers) InsertUser(ctx context.Context, u domain.User) error {
	c.inserts.Add(1)
	return c.fakeUsers.InsertUser(ctx, u)
}

func (c *countingUsers) PutUser(ctx context.Context, u domain.User, deleted bool) error {
	c.puts.Add(1)
	return c.fakeUsers.PutUser(ctx, u, deleted)
}

// TestJITAnnouncementWritesOnlyWhatTheViewLacks: a redelivery that
// finishes a recorded user.created writes the user only when the view does
// not hold that version, and then only inserts it: a newer state of the
// user in the store (changed by an admin meanwhile) is never overwritten
// with the recorded first version.
func TestJITAnnouncementWritesOnlyWhatTheViewLacks(t *testing.T) {
	t.Parallel()
	for _, inView := range []bool{true, false} {
		t.Run(fmt.Sprintf("in view %v", inView), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			users := &countingUsers{fakeUsers: e.users}
			e.attest.Users = users
			tok, _ := e.token(t, "jit@example.com", t0)
			payload := map[string]any{"request_id": "jit-w", "token": tok}
			e.pub.refuseType(domain.EventUserCreated)
			in := e.deliver(t, at("TAT_ATTEST", 5), payload, 1)
			jitID := domain.JITUserID("jit@example.com")
			u, ok := e.users.user(jitID)
			if !ok || u.Version != 1 {
				t.Fatalf("precondition: the JIT user is stored at version 1: %+v %v", u, ok)
			}
			if inView {
				e.view.PutUser(u, false) // a restarted worker's snapshot
			} else {
				// An admin changed the user in the store; this worker's
				// view has not seen it.
				newer := u
				newer.Version, newer.Status = 2, domain.UserDisabled
				_ = e.users.PutUser(context.Background(), newer, false)
			}
			e.pub.refuseType("")
			inserts, puts := users.inserts.Load(), users.puts.Load()

			if _, err := e.attest.Abandon(context.Background(), in, errors.New("deliveries exhausted")); err != nil {
				t.Fatal(err)
			}
			if n := len(e.pub.OfType(domain.EventUserCreated)); n != 1 {
				t.Fatalf("%d user.created events", n)
			}
			if n := users.puts.Load() - puts; n != 0 {
				t.Errorf("the announcement replaced the stored user %d times", n)
			}
			wantInserts := int64(1)
			if inView {
				wantInserts = 0
			}
			if n := users.inserts.Load() - inserts; n != wantInserts {
				t.Errorf("%d inserts, want %d", n, wantInserts)
			}
			if got, _ := e.users.user(jitID); !inView && (got.Version != 2 || got.Status != domain.UserDisabled) {
				t.Errorf("the store's newer user was overwritten: %+v", got)
			}
		})
	}
}

// TestAttestSessionCarriesMappedRoles: a profile that maps role_ids gives
// the session the token's roles; a token without the claim, or a profile
// that maps none, gives an empty list.
func TestAttestSessionCarriesMappedRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	spec := e.profile.ProfileSpec
	spec.ProfileID = "trusted-auth-token-profile-roles"
	spec.AttributeMapping.RoleIDs = "roles"
	withRoles, err := domain.NewProfile(spec, domain.ProfileRules{}, 1, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.view.PutProfile(withRoles, false)

	for i, tc := range []struct {
		profile string
		roles   any
		want    []string
	}{
		{withRoles.ProfileID, []any{"admin", "ops"}, []string{"admin", "ops"}},
		{withRoles.ProfileID, nil, []string{}},
		{e.profile.ProfileID, []any{"admin"}, []string{}},
	} {
		extra := map[string]any{}
		if tc.roles != nil {
			extra["roles"] = tc.roles
		}
		tok := e.idp.token(t, "ada@example.com", fmt.Sprintf("jti-roles-%d", i), t0, extra)
		r := e.attestReply(t, at("TAT_ATTEST", uint64(50+i)), map[string]any{"profile_id": tc.profile, "token": tok, "session_duration_minutes": 30})
		if r.StatusCode != 200 || r.Session == nil {
			t.Fatalf("case %d: %+v", i, r)
		}
		if fmt.Sprint(r.Session.Roles) != fmt.Sprint(tc.want) || r.Session.Roles == nil {
			t.Errorf("case %d: session roles %#v, want %#v", i, r.Session.Roles, tc.want)
		}
	}
}

// TestJITUserComesBackAfterDelete: a JIT user an admin deleted is made
// again by the next token for its address, as the next version of the same
// record: stored, announced and in the view at that version.
func TestJITUserComesBackAfterDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	jitID := domain.JITUserID("back@example.com")
	tok, _ := e.token(t, "back@example.com", t0)
	if r := e.attestReply(t, at("TAT_ATTEST", 60), map[string]any{"request_id": "jit-1", "token": tok}); r.StatusCode != 200 || r.UserID != jitID {
		t.Fatalf("first: %+v", r)
	}
	u, ok := e.view.User(jitID)
	if !ok || u.Version != 1 {
		t.Fatalf("precondition: %+v %v", u, ok)
	}
	u.Version = 2
	_ = e.users.PutUser(context.Background(), u, true) // deleted by an admin
	e.view.PutUser(u, true)

	tok, _ = e.token(t, "back@example.com", t0)
	r := e.attestReply(t, at("TAT_ATTEST", 61), map[string]any{"request_id": "jit-2", "token": tok})
	if r.StatusCode != 200 || r.UserID != jitID || r.User == nil || r.User.Version != 3 {
		t.Fatalf("after delete: %+v", r)
	}
	if got, ok := e.users.user(jitID); !ok || got.Version != 3 {
		t.Errorf("the store holds %+v (live %v), want version 3", got, ok)
	}
	if got, ok := e.view.User(jitID); !ok || got.Version != 3 {
		t.Errorf("the view holds %+v (live %v), want version 3", got, ok)
	}
	created := e.pub.OfType(domain.EventUserCreated)
	if len(created) != 2 {
		t.Fatalf("%d user.created events", len(created))
	}
	var d handlers.UserEventData
	if err := json.Unmarshal(created[1].Data, &d); err != nil || d.User == nil || d.User.Version != 3 {
		t.Errorf("the second user.created names %+v (%v)", d.User, err)
	}
}

// TestAttestFailedNamesTheProfileUpToItsLimit: a refused request's
// attest.failed names the profile it asked for (data and subject) when the
// id is within the 128 characters a profile id may have; a longer one is
// not echoed.
func TestAttestFailedNamesTheProfileUpToItsLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	for i, tc := range []struct {
		profileID string
		echoed    bool
	}{
		{"trusted-auth-token-profile-unknown", true},
		{"p" + fmt.Sprintf("%0127d", 0), true},
		{"p" + fmt.Sprintf("%0128d", 0), false},
	} {
		reqID := fmt.Sprintf("unknown-%d", i)
		tok, _ := e.token(t, "ada@example.com", t0)
		r := e.attestReply(t, at("TAT_ATTEST", uint64(70+i)), map[string]any{"request_id": reqID, "profile_id": tc.profileID, "token": tok})
		if r.StatusCode == 200 {
			t.Fatalf("profile %q: accepted", tc.profileID)
		}
		evs := e.eventsFor(reqID)
		if len(evs) != 1 || evs[0].Type != domain.EventAttestFailed {
			t.Fatalf("profile %q: events %+v", tc.profileID, evs)
		}
		var d handlers.AttestEventData
		_ = json.Unmarshal(evs[0].Data, &d)
		want := ""
		if tc.echoed {
			want = tc.profileID
		}
		if d.ProfileID != want || evs[0].Subject != want {
			t.Errorf("%d-character profile id: attest.failed names %q (subject %q), want %q", len(tc.profileID), d.ProfileID, evs[0].Subject, want)
		}
	}
}
