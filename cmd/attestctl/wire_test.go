package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// These tests run the command line against an in-process NATS server with
// JetStream and a stand-in for the worker that answers as the contract
// says; no outside server is needed.

// received is one command the stand-in worker took from a stream.
type received struct {
	subject string
	header  nats.Header
	data    []byte
}

type fakeWorker struct {
	url string
	js  jetstream.JetStream
	nc  *nats.Conn
	got chan received
}

func startFakeWorker(t *testing.T) *fakeWorker {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &fakeWorker{url: s.ClientURL(), js: js, nc: nc, got: make(chan received, 100)}
	for name, subjects := range map[string][]string{
		"TAT_ATTEST": {"tat.attest.requests", "tat.attest.requests.>"},
		"TAT_ADMIN":  {"tat.profiles.commands", "tat.users.commands"},
		"TAT_EVENTS": {"tat.events.>"},
	} {
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects})
		if err != nil {
			t.Fatal(err)
		}
		if name == "TAT_EVENTS" {
			continue
		}
		cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker"})
		if err != nil {
			t.Fatal(err)
		}
		cc, err := cons.Consume(w.handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cc.Stop)
	}
	svc, err := micro.AddService(nc, micro.Config{Name: "tat-sessions", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	g := svc.AddGroup("tat.sessions")
	echo := func(status int) micro.HandlerFunc {
		return func(r micro.Request) {
			_ = r.RespondJSON(map[string]any{"status_code": status, "got": json.RawMessage(r.Data())})
		}
	}
	_ = g.AddEndpoint("authenticate", echo(200))
	_ = g.AddEndpoint("revoke", echo(404))
	_ = g.AddEndpoint("jwks", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte(`{"keys":[]}`)) }))
	// The CLI connects separately: the server must know the endpoints first.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// handle answers a command on its Tat-Reply-To subject: 409 when it asks for
// expected_version 9, nothing at all for the token "silent", else 200.
func (w *fakeWorker) handle(msg jetstream.Msg) {
	w.got <- received{subject: msg.Subject(), header: msg.Headers(), data: msg.Data()}
	_ = msg.Ack()
	if bytes.Contains(msg.Data(), []byte(`"token":"silent"`)) {
		return
	}
	status := 200
	if bytes.Contains(msg.Data(), []byte(`"expected_version":9`)) {
		status = 409
	}
	reply, _ := json.Marshal(map[string]any{"status_code": status, "got": json.RawMessage(msg.Data())})
	_ = w.nc.Publish(msg.Headers().Get(replyHeader), reply)
}

func (w *fakeWorker) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-w.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the worker received nothing")
	}
	return received{}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestProfileApplyPublishesAndPrintsTheReply(t *testing.T) {
	w := startFakeWorker(t)
	file := writeFile(t, `{"name": "Zendesk SSO", "issuer": "https://idp.example.com/", "audience": "my-app"}`)
	code, stdout, stderr := runCLI(t, "-nats", w.url, "profile", "apply", "-f", file)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := w.next(t)
	if r.subject != "tat.profiles.commands" {
		t.Errorf("subject %s", r.subject)
	}
	var cmd struct {
		ChangeID string         `json:"change_id"`
		Op       string         `json:"op"`
		Profile  map[string]any `json:"profile"`
	}
	if err := json.Unmarshal(r.data, &cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.Op != "upsert" || cmd.Profile["name"] != "Zendesk SSO" || cmd.ChangeID == "" {
		t.Errorf("command %s", r.data)
	}
	if got := r.header.Get(jetstream.MsgIDHeader); got != cmd.ChangeID {
		t.Errorf("Nats-Msg-Id %q, change_id %q", got, cmd.ChangeID)
	}
	if !strings.HasPrefix(r.header.Get(replyHeader), "_INBOX.") {
		t.Errorf("Tat-Reply-To %q", r.header.Get(replyHeader))
	}
	if !strings.HasPrefix(stdout, "{\n  \"") || !strings.Contains(stdout, "\n  \"status_code\": 200\n") {
		t.Errorf("reply not printed pretty:\n%s", stdout)
	}

	// A reply with status 409 is printed and exits 1.
	code, stdout, _ = runCLI(t, "-nats", w.url, "profile", "apply", "-f", file, "-expected-version", "9")
	if code != exitFailure || !strings.Contains(stdout, `"status_code": 409`) {
		t.Errorf("409: exit %d\n%s", code, stdout)
	}
	w.next(t)
}

func TestDeleteAndDuplicate(t *testing.T) {
	w := startFakeWorker(t)
	code, _, stderr := runCLI(t, "user", "delete", "-nats", w.url, "-id", "user-1", "-change-id", "u-9")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := w.next(t)
	if r.subject != "tat.users.commands" || string(r.data) != `{"change_id":"u-9","op":"delete","user_id":"user-1"}` {
		t.Errorf("%s %s", r.subject, r.data)
	}
	// The same change_id again is dropped by the stream: said, not waited for.
	start := time.Now()
	code, _, stderr = runCLI(t, "user", "delete", "-nats", w.url, "-id", "user-1", "-change-id", "u-9")
	if code != exitFailure || !strings.Contains(stderr, "already holds") || time.Since(start) > 5*time.Second {
		t.Errorf("duplicate: exit %d after %v: %s", code, time.Since(start), stderr)
	}
}

func TestAttestPublishes(t *testing.T) {
	w := startFakeWorker(t)
	tokenFile := writeFile(t, "  eyJ.a.b\n")
	code, stdout, stderr := runCLI(t, "attest", "-nats", w.url, "-profile", "p-1", "-token-file", tokenFile,
		"-duration", "60", "-claims", `{"plan":"pro"}`, "-request-id", "r-1", "-app", "web")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := w.next(t)
	want := `{"request_id":"r-1","profile_id":"p-1","token":"eyJ.a.b","session_duration_minutes":60,"session_custom_claims":{"plan":"pro"}}`
	if r.subject != "tat.attest.requests.web" || string(r.data) != want || r.header.Get(jetstream.MsgIDHeader) != "r-1" {
		t.Errorf("%s %v\n%s", r.subject, r.header, r.data)
	}
	if !strings.Contains(stdout, `"status_code": 200`) {
		t.Errorf("%s", stdout)
	}

	// No reply within -timeout: exit 1, saying the request is stored.
	code, _, stderr = runCLI(t, "attest", "-nats", w.url, "-timeout", "500ms", "-profile", "p-1", "-token", "silent")
	if code != exitFailure || !strings.Contains(stderr, "no reply within 500ms") || !strings.Contains(stderr, "TAT_ATTEST") {
		t.Errorf("no reply: exit %d: %s", code, stderr)
	}
	if r := w.next(t); r.subject != "tat.attest.requests" {
		t.Errorf("subject %s", r.subject)
	}

	// No stream for the prefix.
	code, _, stderr = runCLI(t, "attest", "-nats", w.url, "-prefix", "other", "-profile", "p-1", "-token", "t")
	if code != exitFailure || !strings.Contains(stderr, "no stream takes other.attest.requests") {
		t.Errorf("no stream: exit %d: %s", code, stderr)
	}
}

func TestSessions(t *testing.T) {
	w := startFakeWorker(t)
	code, stdout, stderr := runCLI(t, "sessions", "authenticate", "-nats", w.url, "-session-token", "st", "-duration", "30")
	if code != exitOK || !strings.Contains(stdout, `"got": {`) {
		t.Fatalf("authenticate: exit %d: %s%s", code, stdout, stderr)
	}
	var reply struct {
		Got map[string]any `json:"got"`
	}
	_ = json.Unmarshal([]byte(stdout), &reply)
	if reply.Got["session_token"] != "st" || reply.Got["session_duration_minutes"] != float64(30) || len(reply.Got) != 2 {
		t.Errorf("request %v", reply.Got)
	}
	code, stdout, _ = runCLI(t, "sessions", "revoke", "-nats", w.url, "-session-id", "session-1")
	if code != exitFailure || !strings.Contains(stdout, `"session_id": "session-1"`) {
		t.Errorf("revoke (404): exit %d: %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "sessions", "jwks", "-nats", w.url)
	if code != exitOK || stdout != "{\n  \"keys\": []\n}\n" {
		t.Errorf("jwks: exit %d: %q", code, stdout)
	}
	code, _, stderr = runCLI(t, "sessions", "jwks", "-nats", w.url, "-prefix", "other")
	if code != exitFailure || !strings.Contains(stderr, "no sessions service") {
		t.Errorf("no service: exit %d: %s", code, stderr)
	}
}

func TestEvents(t *testing.T) {
	w := startFakeWorker(t)
	ctx := context.Background()
	publish := func(typ string) {
		t.Helper()
		ev := `{ "specversion": "1.0", "type": "tat.` + typ + `",
			"data": {"n": 1} }`
		if _, err := w.js.Publish(ctx, "tat.events."+typ, []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	for _, typ := range []string{"session.created", "attest.failed", "session.updated"} {
		publish(typ)
	}

	code, stdout, stderr := runCLI(t, "events", "-nats", w.url, "-replay", "-filter", "session.>", "-n", "2")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) != 2 || !strings.Contains(lines[0], "session.created") || !strings.Contains(lines[1], "session.updated") {
		t.Fatalf("exit %d: %q %s", code, stdout, stderr)
	}
	if lines[0] != `{"specversion":"1.0","type":"tat.session.created","data":{"n":1}}` {
		t.Errorf("not one compact line: %s", lines[0])
	}

	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-replay", "-no-follow")
	if code != exitOK || strings.Count(stdout, "\n") != 3 {
		t.Errorf("-no-follow: exit %d: %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-replay", "-no-follow", "-filter", "user.>,profile.>")
	if code != exitOK || stdout != "" {
		t.Errorf("-no-follow with nothing: exit %d: %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-since", "1h", "-no-follow", "-filter", "attest.failed")
	if code != exitOK || strings.Count(stdout, "\n") != 1 {
		t.Errorf("-since: exit %d: %s", code, stdout)
	}

	// Without -replay, only events published from now on.
	var wg sync.WaitGroup
	var got string
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, got, _ = runCLI(t, "events", "-nats", w.url, "-n", "1", "-filter", "user.created")
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := time.After(10 * time.Second)
	for waiting := true; waiting; {
		publish("user.created")
		select {
		case <-done:
			waiting = false
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("events did not stop after -n 1")
		}
	}
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "user.created") {
		t.Errorf("new events: %q", got)
	}

	code, _, stderr = runCLI(t, "events", "-nats", w.url, "-prefix", "other", "-replay")
	if code != exitFailure || !strings.Contains(stderr, "no stream OTHER_EVENTS") {
		t.Errorf("no stream: exit %d: %s", code, stderr)
	}
}
