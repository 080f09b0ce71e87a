package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// TestSessionsServiceRefusesStreamReplySubjects is the regression test of
// the sessions service's open reply: a core request to authenticate (or
// jwks, or revoke) whose reply subject is under the prefix or a "$" subject
// must get no reply there. Before, the worker published the reply, with
// session_token and session_jwt, into TAT_EVENTS (the audit log), into the
// attest work queue, or as a JetStream API call of its own.
func TestSessionsServiceRefusesStreamReplySubjects(t *testing.T) {
	f := newFixture(t)
	start := f.attest("rs-1", map[string]any{"session_duration_minutes": 60})
	mustStatus(t, start, 200)
	tok := start["session_token"].(string)
	listener := f.env.Connect()
	for _, tc := range []struct{ endpoint, reply string }{
		{"authenticate", f.env.Subject("events", "stolen")},
		{"authenticate", f.env.Subject("attest", "requests", "app")},
		{"authenticate", "$JS.API.STREAM.INFO.TAT_EVENTS"},
		{"authenticate", "$KV.TAT_JWKS.stolen"},
		{"jwks", f.env.Subject("events", "jwks")},
		{"revoke", f.env.Subject("events", "revoked-reply")},
		{"admin.revoke", f.env.Subject("events", "admin-revoked-reply")},
		{"admin.revoke", f.env.Subject("attest", "requests", "app")},
	} {
		t.Run(tc.endpoint+" to "+tc.reply, func(t *testing.T) {
			sub, err := listener.SubscribeSync(tc.reply)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			if err := listener.Flush(); err != nil {
				t.Fatal(err)
			}
			body := `{"session_token":"` + tok + `"}`
			if tc.endpoint == "jwks" {
				body = `{}`
			}
			if tc.endpoint == "revoke" {
				body = `{"session_token":"tat_st_that-does-not-exist"}`
			}
			if tc.endpoint == "admin.revoke" {
				body = `{"session_id":"session-that-does-not-exist"}`
			}
			if err := f.env.NC.PublishMsg(&nats.Msg{Subject: f.env.Subject("sessions", tc.endpoint), Reply: tc.reply, Data: []byte(body)}); err != nil {
				t.Fatal(err)
			}
			// The service handles one endpoint's requests in order: once a
			// request sent after it is answered, the first was handled.
			m, err := f.env.NC.Request(f.env.Subject("sessions", tc.endpoint), []byte(body), 10*time.Second)
			if err != nil {
				t.Fatalf("a request with an inbox got no reply: %v", err)
			}
			if len(m.Data) == 0 {
				t.Fatal("empty reply to the inbox")
			}
			if err := listener.Flush(); err != nil {
				t.Fatal(err)
			}
			if got, err := sub.NextMsg(300 * time.Millisecond); err == nil {
				t.Fatalf("the worker replied on %s: %s", tc.reply, got.Data)
			}
		})
	}
	// Nothing the service answers reached a stream.
	for _, stream := range []string{"TAT_EVENTS", "TAT_ATTEST"} {
		for _, d := range f.env.RawStreamData(stream) {
			if strings.Contains(string(d), tok) || strings.Contains(string(d), "session_jwt") {
				t.Fatalf("%s holds a sessions reply: %s", stream, d)
			}
		}
	}
	if !strings.Contains(f.w.Logs.String(), "sessions reply refused") {
		t.Error("no warning logged for the refused replies")
	}
	// The session is still there (the refused authenticate calls did not
	// break it) and a proper call is answered.
	b, _ := json.Marshal(map[string]any{"session_token": tok})
	m, err := f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	_ = json.Unmarshal(m.Data, &rep)
	mustStatus(t, rep, 200)
}

// publishWithReply publishes a command on subject with Tat-Reply-To reply,
// and waits until its outcome event (found by id) is stored.
func publishWithReply(t *testing.T, f *fixture, subject, reply, id string, payload map[string]any) domain.Event {
	t.Helper()
	b, _ := json.Marshal(payload)
	m := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
	m.Header.Set(worker.ReplyHeader, reply)
	if _, err := f.env.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, e := range f.env.Events() {
			var d struct {
				RequestID string `json:"request_id"`
				ChangeID  string `json:"change_id"`
			}
			_ = json.Unmarshal(e.Data, &d)
			if d.RequestID == id || d.ChangeID == id {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no outcome event for %s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRefusedReplyIsDecidedAndAudited: a command whose reply subject is
// outside what the settings allow (here an attest of app1 naming app2's
// inbox, and a profile command naming a subject under no reply prefix) is
// decided as any other and audited, with reply_refused in its event, and
// its reply is sent nowhere.
func TestRefusedReplyIsDecidedAndAudited(t *testing.T) {
	f := newFixtureOn(t, workertest.NewEnv(t), func(c *worker.Config) {
		c.ReplyPrefixes = []string{"_INBOX."}
		c.AppReplyPrefixes = map[string]string{"app1": "_INBOX.app1.", "app2": "_INBOX.app2."}
	}, nil)
	listener := f.env.Connect()
	stolen, err := listener.SubscribeSync("_INBOX.app2.>")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := listener.SubscribeSync("elsewhere.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := listener.Flush(); err != nil {
		t.Fatal(err)
	}
	ev := publishWithReply(t, f, f.env.Subject("attest", "requests", "app1"), "_INBOX.app2.steal", "rr-1",
		map[string]any{"request_id": "rr-1", "profile_id": f.profile, "token": f.token(nil), "session_duration_minutes": 60})
	var d map[string]any
	_ = json.Unmarshal(ev.Data, &d)
	if ev.Type != domain.EventSessionCreated || d["reply_refused"] != true || d["session"] == nil {
		t.Fatalf("outcome of a request with a refused reply: %s %s", ev.Type, ev.Data)
	}
	// Its own prefix gets the reply, and its event says nothing of refusal.
	mine, err := listener.SubscribeSync("_INBOX.app1.mine")
	if err != nil {
		t.Fatal(err)
	}
	if err := listener.Flush(); err != nil {
		t.Fatal(err)
	}
	ev = publishWithReply(t, f, f.env.Subject("attest", "requests", "app1"), "_INBOX.app1.mine", "rr-3",
		map[string]any{"request_id": "rr-3", "profile_id": f.profile, "token": f.token(nil)})
	d = map[string]any{}
	_ = json.Unmarshal(ev.Data, &d)
	if ev.Type != domain.EventAttestVerified || d["reply_refused"] != nil {
		t.Fatalf("outcome with an allowed reply: %s %s", ev.Type, ev.Data)
	}
	if m, err := mine.NextMsg(10 * time.Second); err != nil || !strings.Contains(string(m.Data), `"rr-3"`) {
		t.Fatalf("no reply on app1's own prefix: %v", err)
	}
	// A profile command whose reply goes nowhere allowed: applied, audited.
	ev = publishWithReply(t, f, f.env.Subject("profiles", "commands"), "elsewhere.x", "pc-refused",
		map[string]any{"change_id": "pc-refused", "op": "upsert", "profile": map[string]any{
			"name": "Other", "issuer": "https://other.example.com/", "audience": "a",
			"public_keys": []string{f.iss.PublicPEM()}, "attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
	d = map[string]any{}
	_ = json.Unmarshal(ev.Data, &d)
	if ev.Type != domain.EventProfileCreated || d["reply_refused"] != true {
		t.Fatalf("profile command with a refused reply: %s %s", ev.Type, ev.Data)
	}
	for _, sub := range []*nats.Subscription{stolen, elsewhere} {
		if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
			t.Fatalf("a refused reply was sent to %s: %s", m.Subject, m.Data)
		}
	}
	if !strings.Contains(f.w.Logs.String(), "Tat-Reply-To refused") {
		t.Error("no warning logged")
	}
}
