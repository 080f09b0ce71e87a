package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// at is a first delivery of the message at seq of stream, stored at t0.
func at(stream string, seq uint64) handlers.Input {
	return handlers.Input{Stream: stream, StreamSeq: seq, PublishedAt: t0}
}

// again is a redelivery of the same message.
func again(in handlers.Input) handlers.Input {
	in.Redelivered = true
	return in
}

// positionOf decodes the position an event names.
func positionOf(t testing.TB, e domain.Event) handlers.Position {
	t.Helper()
	var p handlers.Position
	if err := json.Unmarshal(e.Data, &p); err != nil {
		t.Fatalf("event %s data: %v", e.ID, err)
	}
	return p
}

// repeatedOf decodes an attest.repeated (or profile/user.repeated) event.
func repeatedOf(t testing.TB, e domain.Event) handlers.RepeatedEventData {
	t.Helper()
	var d handlers.RepeatedEventData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("event %s data: %v", e.ID, err)
	}
	return d
}

// TestAuditStreamSeqInEveryOutcomeEvent: every kind of outcome event names
// the stream, sequence and store time of the message it answers: a new
// session, verify only, a refusal, a payload that does not decode, a
// request without any id, one given up after its deliveries, and profile
// and user commands of TAT_ADMIN. Replies do not carry it.
func TestAuditStreamSeqInEveryOutcomeEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	ctx := context.Background()
	tok := func() string { raw, _ := e.token(t, "ada@example.com", t0); return raw }

	type sent struct {
		seq  uint64
		typ  string
		find func() []domain.Event
	}
	var all []sent
	attest := func(seq uint64, payload string, typ string, byID string) {
		t.Helper()
		out, err := e.attest.Handle(ctx, handlers.Input{Data: []byte(payload), Stream: "TAT_ATTEST", StreamSeq: seq, PublishedAt: t0.Add(time.Duration(seq) * time.Second)})
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if strings.Contains(string(out.Reply), "stream_seq") {
			t.Errorf("seq %d: the reply carries the position: %s", seq, out.Reply)
		}
		all = append(all, sent{seq: seq, typ: typ, find: func() []domain.Event { return e.eventsFor(byID) }})
	}
	js := func(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }
	attest(1, js(map[string]any{"request_id": "s", "profile_id": e.profile.ProfileID, "token": tok(), "session_duration_minutes": 30}), domain.EventSessionCreated, "s")
	attest(2, js(map[string]any{"request_id": "v", "profile_id": e.profile.ProfileID, "token": tok()}), domain.EventAttestVerified, "v")
	attest(3, js(map[string]any{"request_id": "r", "profile_id": e.profile.ProfileID, "token": "a.b.c"}), domain.EventAttestFailed, "r")
	attest(4, `{"request_id":"x","junk":`, domain.EventAttestFailed, "#seq:4")
	attest(5, js(map[string]any{"profile_id": e.profile.ProfileID, "token": tok()}), domain.EventAttestVerified, "#seq:5")

	in := handlers.Input{Data: []byte(js(map[string]any{"request_id": "gave-up", "profile_id": e.profile.ProfileID, "token": tok()})),
		Stream: "TAT_ATTEST", StreamSeq: 6, PublishedAt: t0.Add(6 * time.Second), Redelivered: true}
	if _, err := e.attest.Abandon(ctx, in, context.DeadlineExceeded); err != nil {
		t.Fatal(err)
	}
	all = append(all, sent{seq: 6, typ: domain.EventAttestFailed, find: func() []domain.Event { return e.eventsFor("gave-up") }})

	for _, s := range all {
		evs := s.find()
		if len(evs) != 1 || evs[0].Type != s.typ {
			t.Fatalf("seq %d: events %+v, want one %s", s.seq, evs, s.typ)
		}
		p := positionOf(t, evs[0])
		if p.Stream != "TAT_ATTEST" || p.StreamSeq != s.seq || !p.RequestedAt.Equal(t0.Add(time.Duration(s.seq)*time.Second)) {
			t.Errorf("seq %d: %s names %+v", s.seq, s.typ, p)
		}
	}

	// TAT_ADMIN: a profile change and a refused user change.
	profiles := handlers.NewProfileChange(e.view, e.barrier, e.attest.Done, e.clock.Now, nopProfiles{}, fakeKeys{}, domain.ProfileRules{})
	users := handlers.NewUserChange(e.view, e.barrier, e.attest.Done, e.clock.Now, e.users)
	spec := map[string]any{"profile_id": e.profile.ProfileID, "name": "Renamed", "issuer": e.idp.iss, "audience": e.idp.aud,
		"public_keys": []string{e.idp.publicPEM(t)}, "attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}
	out, err := profiles.Handle(ctx, handlers.Input{Data: []byte(js(map[string]any{"change_id": "c-1", "op": "upsert", "profile": spec})), Stream: "TAT_ADMIN", StreamSeq: 7, PublishedAt: t0})
	if err != nil || strings.Contains(string(out.Reply), "stream") {
		t.Fatalf("profile change: %s, %v", out.Reply, err)
	}
	if _, err := users.Handle(ctx, handlers.Input{Data: []byte(`{"change_id":"u-1","op":"delete","user_id":"nobody"}`), Stream: "TAT_ADMIN", StreamSeq: 8, PublishedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for seq, typ := range map[uint64]string{7: domain.EventProfileUpdated, 8: domain.EventUserRejected} {
		evs := e.pub.OfType(typ)
		if len(evs) != 1 {
			t.Fatalf("%d %s events", len(evs), typ)
		}
		if p := positionOf(t, evs[0]); p.Stream != "TAT_ADMIN" || p.StreamSeq != seq || !p.RequestedAt.Equal(t0) {
			t.Errorf("%s names %+v, want TAT_ADMIN seq %d", typ, p, seq)
		}
	}
}

// nopProfiles is a ProfileStore that keeps nothing.
type nopProfiles struct{}

func (nopProfiles) PutProfile(context.Context, domain.Profile, bool) error { return nil }

// TestAuditRepeatGetsOneRepeatedEvent: a second message carrying a known
// request id (another stream sequence) is answered from the first outcome
// and announced by exactly one attest.repeated that names its own sequence
// and the first outcome's event, with no session and no secret in it. A
// redelivery of either message publishes nothing at all (not even a copy
// JetStream would drop), and a message reusing the id for another request
// gets invalid_request and its own attest.repeated flagged
// different_request.
func TestAuditRepeatGetsOneRepeatedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	tok, _ := e.token(t, "ada@example.com", t0)
	payload := map[string]any{"request_id": "dup", "token": tok, "session_duration_minutes": 30}

	first := e.attestReply(t, at("TAT_ATTEST", 10), payload)
	if first.StatusCode != 200 || first.Session == nil {
		t.Fatalf("first: %+v", first)
	}
	created := e.eventsFor("dup")
	if len(created) != 1 || created[0].Type != domain.EventSessionCreated {
		t.Fatalf("events after the first: %+v", created)
	}

	second := e.attestReply(t, at("TAT_ATTEST", 11), payload)
	if second.Session == nil || second.Session.SessionID != first.Session.SessionID || second.SessionToken != first.SessionToken {
		t.Fatalf("the repeat was not answered from the first outcome: %+v", second)
	}
	reps := e.pub.OfType(domain.EventAttestRepeated)
	if len(reps) != 1 {
		t.Fatalf("%d attest.repeated events, want 1", len(reps))
	}
	d := repeatedOf(t, reps[0])
	want := handlers.RepeatedEventData{RequestID: "dup", Position: handlers.Position{Stream: "TAT_ATTEST", StreamSeq: 11, RequestedAt: t0},
		FirstEventID: created[0].ID, FirstStreamSeq: 10, StatusCode: 200}
	if d.RequestID != want.RequestID || d.Position != want.Position || d.FirstEventID != want.FirstEventID ||
		d.FirstStreamSeq != want.FirstStreamSeq || d.StatusCode != 200 || d.DifferentRequest || d.ErrorType != "" {
		t.Errorf("attest.repeated data %+v, want %+v", d, want)
	}
	raw := string(reps[0].Data)
	for _, secret := range []string{tok, first.SessionToken, first.SessionJWT, `"session"`, first.Session.SessionID} {
		if strings.Contains(raw, secret) {
			t.Errorf("attest.repeated carries %.20s...: %s", secret, raw)
		}
	}
	if reps[0].ID == created[0].ID {
		t.Error("the repeat reused the first outcome's event id")
	}

	// Redeliveries of either message: nothing is published, not even a
	// copy the events stream would drop as a duplicate.
	calls := e.pub.calls.Load()
	for _, in := range []handlers.Input{again(at("TAT_ATTEST", 10)), again(at("TAT_ATTEST", 11)), again(at("TAT_ATTEST", 11))} {
		r := e.attestReply(t, in, payload)
		if r.StatusCode != 200 || r.Session.SessionID != first.Session.SessionID {
			t.Fatalf("redelivery of seq %d: %+v", in.StreamSeq, r)
		}
	}
	if n := e.pub.calls.Load() - calls; n != 0 {
		t.Fatalf("redeliveries made %d publish calls, want 0", n)
	}

	// Another request under the same id: refused, never sees the first
	// outcome, and its sequence has one event of its own.
	other, _ := e.token(t, "ada@example.com", t0)
	thief := e.attestReply(t, at("TAT_ATTEST", 12), map[string]any{"request_id": "dup", "token": other})
	if thief.StatusCode != 400 || thief.ErrorType != domain.ErrInvalidRequest.Code || thief.Session != nil || thief.SessionToken != "" || thief.User != nil {
		t.Fatalf("reused id: %+v", thief)
	}
	reps = e.pub.OfType(domain.EventAttestRepeated)
	if len(reps) != 2 {
		t.Fatalf("%d attest.repeated events, want 2", len(reps))
	}
	d = repeatedOf(t, reps[1])
	if !d.DifferentRequest || d.StreamSeq != 12 || d.StatusCode != 400 || d.ErrorType != domain.ErrInvalidRequest.Code || d.FirstEventID != created[0].ID {
		t.Errorf("attest.repeated of the reused id: %+v", d)
	}
	calls = e.pub.calls.Load()
	e.attestReply(t, again(at("TAT_ATTEST", 12)), map[string]any{"request_id": "dup", "token": other})
	if n := e.pub.calls.Load() - calls; n != 0 {
		t.Fatalf("a redelivery of the reused id made %d publish calls", n)
	}

	// Still one outcome event for the request id, and the session once.
	if n := len(e.pub.OfType(domain.EventSessionCreated)); n != 1 {
		t.Errorf("%d session.created events", n)
	}
	if n := e.sessions.Count(); n != 1 {
		t.Errorf("%d session revisions", n)
	}
}

// TestAuditRepeatOfFailureAndWithoutPosition: a repeat of a refused request
// is announced the same way; a handler run without a stream position
// (tests, tools) publishes no repeated event, since it cannot tell a
// repeat from a redelivery.
func TestAuditRepeatOfFailureAndWithoutPosition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	bad := map[string]any{"request_id": "bad", "profile_id": "nope", "token": "a.b.c"}
	for _, in := range []handlers.Input{at("TAT_ATTEST", 1), at("TAT_ATTEST", 2), {}, {}} {
		r := e.attestReply(t, in, bad)
		if r.ErrorType != domain.ErrProfileNotFound.Code {
			t.Fatalf("seq %d: %+v", in.StreamSeq, r)
		}
	}
	if n := len(e.pub.OfType(domain.EventAttestFailed)); n != 1 {
		t.Fatalf("%d attest.failed events", n)
	}
	reps := e.pub.OfType(domain.EventAttestRepeated)
	if len(reps) != 1 {
		t.Fatalf("%d attest.repeated events, want 1 (for seq 2 only)", len(reps))
	}
	if d := repeatedOf(t, reps[0]); d.StreamSeq != 2 || d.FirstStreamSeq != 1 || d.StatusCode != 404 {
		t.Errorf("attest.repeated %+v", d)
	}
}

// TestAuditAdminRepeat: a profile command repeated under the same
// change_id by another message of TAT_ADMIN gets the first outcome and one
// profile.repeated; its redelivery publishes nothing.
func TestAuditAdminRepeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	profiles := handlers.NewProfileChange(e.view, e.barrier, e.attest.Done, e.clock.Now, nopProfiles{}, fakeKeys{}, domain.ProfileRules{})
	body, _ := json.Marshal(map[string]any{"change_id": "c-9", "op": "delete", "profile_id": e.profile.ProfileID})
	var replies []string
	for _, in := range []handlers.Input{at("TAT_ADMIN", 3), at("TAT_ADMIN", 4), again(at("TAT_ADMIN", 4)), again(at("TAT_ADMIN", 3))} {
		in.Data = body
		out, err := profiles.Handle(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, string(out.Reply))
	}
	for _, r := range replies[1:] {
		if r != replies[0] {
			t.Fatalf("a repeat answered %s, the first %s", r, replies[0])
		}
	}
	deleted := e.pub.OfType(domain.EventProfileDeleted)
	reps := e.pub.OfType(domain.EventProfileRepeated)
	if len(deleted) != 1 || len(reps) != 1 {
		t.Fatalf("%d profile.deleted and %d profile.repeated events, want 1 and 1", len(deleted), len(reps))
	}
	d := repeatedOf(t, reps[0])
	if d.ChangeID != "c-9" || d.RequestID != "" || d.StreamSeq != 4 || d.Stream != "TAT_ADMIN" || d.FirstEventID != deleted[0].ID || d.FirstStreamSeq != 3 || d.StatusCode != 200 {
		t.Errorf("profile.repeated %+v", d)
	}
	if strings.Contains(string(reps[0].Data), `"profile"`) {
		t.Errorf("profile.repeated carries the profile: %s", reps[0].Data)
	}
}
