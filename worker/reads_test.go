package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker/workertest"
)

// read sends one core request to <prefix>.<subject...> and decodes the
// reply.
func read(t *testing.T, env *workertest.Env, body any, subject ...string) map[string]any {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		data, _ = json.Marshal(b)
	}
	m, err := env.NC.Request(env.Subject(subject...), data, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(subject, "."), err)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		t.Fatalf("%s: reply is not JSON: %s", strings.Join(subject, "."), m.Data)
	}
	return out
}

func mustError(t *testing.T, rep map[string]any, status int, errType string) {
	t.Helper()
	mustStatus(t, rep, status)
	if rep["error_type"] != errType {
		t.Fatalf("error_type = %v, want %s; reply %v", rep["error_type"], errType, rep)
	}
}

// addUser applies a user command for email and returns the user id.
func addUser(t *testing.T, env *workertest.Env, changeID, email string, extra map[string]any) string {
	t.Helper()
	u := map[string]any{"emails": []any{map[string]any{"email": email, "verified": true}}}
	for k, v := range extra {
		u[k] = v
	}
	rep := env.Request(env.Subject("users", "commands"), "", map[string]any{"change_id": changeID, "op": "upsert", "user": u})
	mustStatus(t, rep, 200)
	return rep["user"].(map[string]any)["user_id"].(string)
}

// TestReadsServiceAnswersEachSubject runs every read subject against a real
// worker: found, not found, refused input; no secret in any reply.
func TestReadsServiceAnswersEachSubject(t *testing.T) {
	f := newFixture(t)
	env := f.env
	start := f.attest("rd-1", map[string]any{"session_duration_minutes": 60})
	mustStatus(t, start, 200)
	sid := start["session"].(map[string]any)["session_id"].(string)
	secrets := []string{start["session_token"].(string), start["session_jwt"].(string)}
	grace := addUser(t, env, "u-grace", "grace@example.com", nil)

	var replies []map[string]any
	keep := func(r map[string]any) map[string]any { replies = append(replies, r); return r }

	// profiles
	r := keep(read(t, env, map[string]any{"profile_id": f.profile}, "reads", "profiles", "get"))
	mustStatus(t, r, 200)
	if p := r["profile"].(map[string]any); p["profile_id"] != f.profile || p["issuer"] != f.iss.Iss || len(p["public_keys"].([]any)) != 1 {
		t.Fatalf("profiles.get: %v", r)
	}
	mustError(t, read(t, env, map[string]any{"profile_id": "trusted-auth-token-profile-nope"}, "reads", "profiles", "get"), 404, "trusted_token_profile_not_found")
	mustError(t, read(t, env, map[string]any{"profile_id": f.profile, "x": 1}, "reads", "profiles", "get"), 400, "invalid_request")
	r = keep(read(t, env, map[string]any{}, "reads", "profiles", "list"))
	mustStatus(t, r, 200)
	if ps := r["profiles"].([]any); len(ps) != 1 || ps[0].(map[string]any)["profile_id"] != f.profile || r["next_cursor"] != "" {
		t.Fatalf("profiles.list: %v", r)
	}

	// users
	r = keep(read(t, env, map[string]any{"user_id": f.user}, "reads", "users", "get"))
	mustStatus(t, r, 200)
	if r["user"].(map[string]any)["user_id"] != f.user {
		t.Fatalf("users.get by id: %v", r)
	}
	r = keep(read(t, env, map[string]any{"email": "ADA@example.COM"}, "reads", "users", "get"))
	mustStatus(t, r, 200)
	if r["user"].(map[string]any)["user_id"] != f.user {
		t.Fatalf("users.get by email: %v", r)
	}
	mustError(t, read(t, env, map[string]any{"email": "\u0430da@example.com"}, "reads", "users", "get"), 404, "user_not_found")
	mustError(t, read(t, env, map[string]any{"email": "ad\u212A@example.com"}, "reads", "users", "get"), 400, "invalid_request")
	mustError(t, read(t, env, map[string]any{"user_id": f.user, "email": "ada@example.com"}, "reads", "users", "get"), 400, "invalid_request")
	want := []string{f.user, grace}
	slices.Sort(want)
	r = keep(read(t, env, map[string]any{"limit": 1}, "reads", "users", "list"))
	mustStatus(t, r, 200)
	if us := r["users"].([]any); len(us) != 1 || us[0].(map[string]any)["user_id"] != want[0] || r["next_cursor"] != want[0] {
		t.Fatalf("users.list page 1: %v", r)
	}
	r = keep(read(t, env, map[string]any{"limit": 1, "cursor": want[0]}, "reads", "users", "list"))
	if us := r["users"].([]any); len(us) != 1 || us[0].(map[string]any)["user_id"] != want[1] || r["next_cursor"] != "" {
		t.Fatalf("users.list page 2: %v", r)
	}
	mustError(t, read(t, env, map[string]any{"limit": 1000000}, "reads", "users", "list"), 400, "invalid_request")
	mustError(t, read(t, env, map[string]any{"cursor": "not a user id"}, "reads", "users", "list"), 400, "invalid_request")

	// sessions
	r = keep(read(t, env, map[string]any{"session_id": sid}, "reads", "sessions", "get"))
	mustStatus(t, r, 200)
	if s := r["session"].(map[string]any); s["session_id"] != sid || s["user_id"] != f.user {
		t.Fatalf("sessions.get: %v", r)
	}
	mustError(t, read(t, env, map[string]any{"session_id": "session-nope"}, "reads", "sessions", "get"), 404, "session_not_found")
	mustError(t, read(t, env, map[string]any{"session_token": secrets[0]}, "reads", "sessions", "get"), 400, "invalid_request")
	r = keep(read(t, env, map[string]any{"user_id": f.user}, "reads", "sessions", "list"))
	mustStatus(t, r, 200)
	if ss := r["sessions"].([]any); len(ss) != 1 || ss[0].(map[string]any)["session_id"] != sid || r["next_cursor"] != "" {
		t.Fatalf("sessions.list: %v", r)
	}
	r = keep(read(t, env, map[string]any{"user_id": grace}, "reads", "sessions", "list"))
	if ss := r["sessions"].([]any); len(ss) != 0 {
		t.Fatalf("grace's sessions: %v", r)
	}
	mustError(t, read(t, env, map[string]any{"user_id": "user-nope"}, "reads", "sessions", "list"), 404, "user_not_found")
	mustError(t, read(t, env, `not json`, "reads", "sessions", "list"), 400, "invalid_request")

	for _, r := range replies {
		b, _ := json.Marshal(r)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Fatalf("a read reply holds a session secret: %s", b)
			}
		}
		if strings.Contains(string(b), "session_token") || strings.Contains(string(b), "session_jwt") || strings.Contains(string(b), "PRIVATE") {
			t.Fatalf("a read reply names a secret: %s", b)
		}
	}

	// Deleted: not found.
	mustStatus(t, env.Request(env.Subject("users", "commands"), "", map[string]any{"change_id": "u-del", "op": "delete", "user_id": grace}), 200)
	mustError(t, read(t, env, map[string]any{"user_id": grace}, "reads", "users", "get"), 404, "user_not_found")
	mustError(t, read(t, env, map[string]any{"email": "grace@example.com"}, "reads", "users", "get"), 404, "user_not_found")
	mustStatus(t, env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": "p-del", "op": "delete", "profile_id": f.profile}), 200)
	mustError(t, read(t, env, map[string]any{"profile_id": f.profile}, "reads", "profiles", "get"), 404, "trusted_token_profile_not_found")
	if r := read(t, env, map[string]any{}, "reads", "profiles", "list"); len(r["profiles"].([]any)) != 0 {
		t.Fatalf("profiles.list after delete: %v", r)
	}
}

// TestReadsSeeChangesMadeThroughAnotherWorker: with two workers, a user,
// profile or session made a moment ago (through whichever worker took the
// command) is found at once by a read, whichever worker answers it.
func TestReadsSeeChangesMadeThroughAnotherWorker(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.StartWorker(nil, nil)
	for i := range 10 {
		id := addUser(t, env, fmt.Sprint("u-many-", i), fmt.Sprintf("many%d@example.com", i), nil)
		mustStatus(t, read(t, env, map[string]any{"user_id": id}, "reads", "users", "get"), 200)
		mustStatus(t, read(t, env, map[string]any{"email": fmt.Sprintf("MANY%d@example.com", i)}, "reads", "users", "get"), 200)
		rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": fmt.Sprint("p-many-", i), "op": "upsert", "profile": map[string]any{
			"issuer": f.iss.Iss, "audience": f.iss.Aud, "public_keys": []string{f.iss.PublicPEM()},
			"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
		mustStatus(t, rep, 200)
		mustStatus(t, read(t, env, map[string]any{"profile_id": rep["profile"].(map[string]any)["profile_id"]}, "reads", "profiles", "get"), 200)
		start := f.attest(fmt.Sprint("rd-many-", i), map[string]any{"session_duration_minutes": 10})
		mustStatus(t, start, 200)
		mustStatus(t, read(t, env, map[string]any{"session_id": start["session"].(map[string]any)["session_id"]}, "reads", "sessions", "get"), 200)
	}
}

// TestReadsServiceRefusesStreamReplySubjects: a read whose reply subject
// is under the prefix or a "$" subject gets no reply there (a read names
// users and sessions: it must never land in a stream), and is not even
// looked up; a proper request is answered.
func TestReadsServiceRefusesStreamReplySubjects(t *testing.T) {
	f := newFixture(t)
	env := f.env
	listener := env.Connect()
	body := []byte(fmt.Sprintf(`{"user_id":%q}`, f.user))
	for _, reply := range []string{env.Subject("events", "x"), env.Subject("attest", "requests"), "$JS.API.STREAM.INFO.TAT_EVENTS", "tat"} {
		for _, subject := range []string{"users.get", "users.list", "profiles.list", "sessions.list"} {
			sub, err := listener.SubscribeSync(reply)
			if err != nil {
				t.Fatal(err)
			}
			if err := listener.Flush(); err != nil {
				t.Fatal(err)
			}
			data := body
			if subject == "users.list" || subject == "profiles.list" {
				data = []byte(`{}`)
			}
			if err := env.NC.PublishMsg(&nats.Msg{Subject: env.Subject("reads") + "." + subject, Reply: reply, Data: data}); err != nil {
				t.Fatal(err)
			}
			// A request sent after it with an inbox is answered, so the
			// first was handled (refused) by then.
			mustStatus(t, read(t, env, data, append([]string{"reads"}, strings.Split(subject, ".")...)...), 200)
			if err := listener.Flush(); err != nil {
				t.Fatal(err)
			}
			if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
				t.Fatalf("%s answered on %s: %s", subject, reply, m.Data)
			}
			_ = sub.Unsubscribe()
		}
	}
	for _, stream := range []string{"TAT_EVENTS", "TAT_ATTEST"} {
		for _, d := range env.RawStreamData(stream) {
			if strings.Contains(string(d), `"status_code":200,"user"`) || strings.Contains(string(d), `"users":[`) {
				t.Fatalf("%s holds a read reply: %s", stream, d)
			}
		}
	}
	if !strings.Contains(f.w.Logs.String(), "reads reply refused") {
		t.Error("no warning logged for the refused replies")
	}
}

// TestReadsMissFloodSharesCatchUps: reads that miss each catch the view up,
// but concurrent ones share the stream-info rounds: a flood of not-found
// reads costs far fewer JetStream API calls than reads, and the worker
// still answers.
func TestReadsMissFloodSharesCatchUps(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ctx := context.Background()
	before, err := env.JS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := env.NC.Request(env.Subject("reads", "users", "get"), fmt.Appendf(nil, `{"user_id":"user-miss-%d"}`, i), 20*time.Second)
			if err != nil {
				errs <- err.Error()
				return
			}
			if !strings.Contains(string(m.Data), `"user_not_found"`) {
				errs <- string(m.Data)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a read that misses: %s", e)
	}
	after, err := env.JS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := after.API.Total - before.API.Total
	t.Logf("%d read misses made %d JetStream API calls", n, calls)
	if calls >= n/2 {
		t.Fatalf("%d read misses made %d JetStream API calls: catch-ups are not shared", n, calls)
	}
	mustStatus(t, read(t, env, map[string]any{"user_id": f.user}, "reads", "users", "get"), 200)
}

// sessionsOf starts n sessions of the fixture's user and returns their ids
// and tokens.
func sessionsOf(t *testing.T, f *fixture, prefix string, n int) (ids, tokens []string) {
	t.Helper()
	for i := range n {
		r := f.attest(fmt.Sprint(prefix, i), map[string]any{"session_duration_minutes": 60})
		mustStatus(t, r, 200)
		ids = append(ids, r["session"].(map[string]any)["session_id"].(string))
		tokens = append(tokens, r["session_token"].(string))
	}
	slices.Sort(ids)
	return ids, tokens
}

// wantSessionsEnded checks every view, the store, the events stream and
// authenticate for sessions that must be revoked: one session.revoked event
// each, the latest stored revision revoked, every worker's view revoked,
// no token authenticates, and no read finds them.
func wantSessionsEnded(t *testing.T, f *fixture, workers []*workertest.Worker, ids, tokens []string) {
	t.Helper()
	env := f.env
	count := map[string]int{}
	for _, e := range env.Events() {
		if e.Type == domain.EventSessionRevoked {
			count[e.Subject]++
		}
	}
	stored, err := env.Store().LoadSessions(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]domain.SessionState{}
	for _, st := range stored {
		byID[st.Session.SessionID] = st
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("session %s: %d session.revoked events, want 1", id, count[id])
		}
		if st := byID[id]; !st.Revoked || st.Revision != 2 {
			t.Errorf("session %s in the store: revoked %v at revision %d, want revoked at 2", id, st.Revoked, st.Revision)
		}
		for i, w := range workers {
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, ok := w.W.View().Session(id)
				if ok && st.Revoked {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("worker %d's view: session %s not revoked: %+v", i, id, st)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		mustError(t, read(t, env, map[string]any{"session_id": id}, "reads", "sessions", "get"), 404, "session_not_found")
	}
	for _, tok := range tokens {
		mustError(t, read(t, env, map[string]any{"session_token": tok}, "sessions", "authenticate"), 404, "session_not_found")
	}
}

// TestRevokeByUserIDEndsSessionsEverywhere: tat.sessions.admin.revoke
// with a user_id revokes each active session of the user, in the store and in
// both workers' views, with one event each; a repeat does nothing more.
func TestRevokeByUserIDEndsSessionsEverywhere(t *testing.T) {
	f := newFixture(t)
	env := f.env
	other := env.StartWorker(nil, nil)
	ids, tokens := sessionsOf(t, f, "rv-", 3)
	// Not on the applications' endpoint, which takes a bearer proof only.
	mustError(t, read(t, env, map[string]any{"user_id": f.user}, "sessions", "revoke"), 400, "invalid_request")
	r := read(t, env, map[string]any{"user_id": f.user}, "sessions", "admin", "revoke")
	mustStatus(t, r, 200)
	var got []string
	for _, id := range r["revoked_session_ids"].([]any) {
		got = append(got, id.(string))
	}
	if !slices.Equal(got, ids) || r["session_token"] != nil || r["session_jwt"] != nil {
		t.Fatalf("revoke by user_id: %v, want %v", r, ids)
	}
	wantSessionsEnded(t, f, []*workertest.Worker{f.w, other}, ids, tokens)
	if r := read(t, env, map[string]any{"user_id": f.user}, "reads", "sessions", "list"); len(r["sessions"].([]any)) != 0 {
		t.Fatalf("sessions.list after revoke: %v", r)
	}
	before := len(env.Events())
	r = read(t, env, map[string]any{"user_id": f.user}, "sessions", "admin", "revoke")
	mustStatus(t, r, 200)
	if l := r["revoked_session_ids"].([]any); len(l) != 0 || len(env.Events()) != before {
		t.Fatalf("repeat revoked %v and published %d events", l, len(env.Events())-before)
	}
	mustError(t, read(t, env, map[string]any{"user_id": "user-nobody"}, "sessions", "admin", "revoke"), 404, "user_not_found")
	mustError(t, read(t, env, map[string]any{"user_id": f.user, "session_id": ids[0]}, "sessions", "admin", "revoke"), 400, "invalid_request")
	// The user itself is untouched and may start a new session.
	mustStatus(t, f.attest("rv-after", map[string]any{"session_duration_minutes": 10}), 200)
}

// TestRevokeWhenUserDeletedOrDisabled: a user command that
// deletes a user, or disables one, ends the user's sessions in the store
// and in both workers' views, one session.revoked event each.
func TestRevokeWhenUserDeletedOrDisabled(t *testing.T) {
	for _, op := range []string{"delete", "disable"} {
		t.Run(op, func(t *testing.T) {
			f := newFixture(t)
			env := f.env
			other := env.StartWorker(nil, nil)
			ids, tokens := sessionsOf(t, f, "ud-", 2)
			cmd := map[string]any{"change_id": "c-" + op, "op": "delete", "user_id": f.user}
			if op == "disable" {
				cmd = map[string]any{"change_id": "c-" + op, "op": "upsert", "user": map[string]any{
					"user_id": f.user, "status": "disabled", "emails": []any{map[string]any{"email": f.email}}}}
			}
			mustStatus(t, env.Request(env.Subject("users", "commands"), "", cmd), 200)
			wantSessionsEnded(t, f, []*workertest.Worker{f.w, other}, ids, tokens)
			// The same command again: its first outcome, and only the light
			// event every repeat gets (no session.revoked again).
			before := len(env.Events())
			mustStatus(t, env.Request(env.Subject("users", "commands"), "", cmd), 200)
			after := env.Events()[before:]
			if len(after) != 1 || after[0].Type != domain.EventUserRepeated {
				t.Fatalf("a repeated %s published %+v, want one %s", op, after, domain.EventUserRepeated)
			}
		})
	}
}

// TestServicesDescribeThemselves: $SRV.INFO names each micro service at the
// version the contract gives (tat-sessions 2.0.0 since D33 moved revoke by
// id to admin_revoke, a breaking change; tat-reads 1.0.0) with its
// endpoints.
func TestServicesDescribeThemselves(t *testing.T) {
	f := newFixture(t)
	nc := f.env.Connect()
	for _, c := range []struct {
		name, version, endpoint string
	}{{"tat-sessions", "2.0.0", "admin_revoke"}, {"tat-reads", "1.0.0", ""}} {
		msg, err := nc.Request("$SRV.INFO."+c.name, nil, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var info micro.Info
		if err := json.Unmarshal(msg.Data, &info); err != nil {
			t.Fatal(err)
		}
		if info.Name != c.name || info.Version != c.version || len(info.Endpoints) == 0 {
			t.Errorf("$SRV.INFO.%s: %s %s, %d endpoints", c.name, info.Name, info.Version, len(info.Endpoints))
		}
		if c.endpoint != "" && !slices.ContainsFunc(info.Endpoints, func(e micro.EndpointInfo) bool { return e.Name == c.endpoint }) {
			t.Errorf("%s has no endpoint %s: %+v", c.name, c.endpoint, info.Endpoints)
		}
	}
}
