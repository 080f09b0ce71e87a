package worker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
