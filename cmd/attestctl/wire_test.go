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

	"github.com/tat-worker/attest/client"
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
	answer := func(reply string) micro.HandlerFunc {
		return func(r micro.Request) {
			w.got <- received{subject: r.Subject(), data: r.Data()}
			_ = r.Respond([]byte(reply))
		}
	}
	_ = g.AddEndpoint("authenticate", answer(`{"status_code":200,"session":{"session_id":"session-1","user_id":"user-1"},"user":{"user_id":"user-1"},"session_token":"tat_st_x","session_jwt":"eyJ.x.y"}`))
	_ = g.AddEndpoint("revoke", answer(`{"status_code":404,"error_type":"session_not_found","error_message":"no such session"}`))
	_ = g.AddEndpoint("admin_revoke", answer(`{"status_code":404,"error_type":"session_not_found","error_message":"no such session"}`), micro.WithEndpointSubject("admin.revoke"))
	_ = g.AddEndpoint("jwks", answer(`{"keys":[]}`))
	// The CLI connects separately: the server must know the endpoints first.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// handle answers a command on its Tat-Reply-To subject, naming its id as
// the worker does: 409 when it asks for expected_version 9, nothing at all
// for the token "silent", else 200 with the command's object.
func (w *fakeWorker) handle(msg jetstream.Msg) {
	w.got <- received{subject: msg.Subject(), header: msg.Headers(), data: msg.Data()}
	_ = msg.Ack()
	if bytes.Contains(msg.Data(), []byte(`"token":"silent"`)) {
		return
	}
	var cmd map[string]any
	_ = json.Unmarshal(msg.Data(), &cmd)
	reply := map[string]any{"status_code": 200}
	for _, k := range []string{"request_id", "change_id", "profile", "user"} {
		if v, ok := cmd[k]; ok {
			reply[k] = v
		}
	}
	if bytes.Contains(msg.Data(), []byte(`"expected_version":9`)) {
		reply = map[string]any{"status_code": 409, "error_type": "version_conflict", "error_message": "the stored version is 1", "change_id": cmd["change_id"]}
	}
	if id, ok := cmd["user_id"]; ok {
		reply["user"] = map[string]any{"user_id": id, "version": 2}
	}
	if _, ok := cmd["request_id"]; ok && reply["status_code"] == 200 {
		reply["user_id"] = "user-1"
		reply["session_token"] = "tat_st_secret"
	}
	data, _ := json.Marshal(reply)
	_ = w.nc.Publish(msg.Headers().Get(client.ReplyHeader), data)
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
	pem := writeFile(t, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
	code, stdout, stderr := runCLI(t, "-nats", w.url, "profile", "apply", "-f", file, "-pem", pem, "-json")
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
	keys, _ := cmd.Profile["public_keys"].([]any)
	if cmd.Op != "upsert" || cmd.Profile["name"] != "Zendesk SSO" || cmd.ChangeID == "" || len(keys) != 1 {
		t.Errorf("command %s", r.data)
	}
	if got := r.header.Get(jetstream.MsgIDHeader); got != cmd.ChangeID {
		t.Errorf("Nats-Msg-Id %q, change_id %q", got, cmd.ChangeID)
	}
	if !strings.HasPrefix(r.header.Get(client.ReplyHeader), "_INBOX.") {
		t.Errorf("Tat-Reply-To %q", r.header.Get(client.ReplyHeader))
	}
	var out client.ProfileResult
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.StatusCode != 200 || out.Profile.Name != "Zendesk SSO" || out.ChangeID != cmd.ChangeID {
		t.Errorf("-json output %+v, %v:\n%s", out, err, stdout)
	}

	// A refusal: "error_type: message" on stderr, exit 1; with -json the
	// contract's error object on stdout too.
	code, stdout, stderr = runCLI(t, "-nats", w.url, "profile", "apply", "-f", file, "-expected-version", "9")
	if code != exitFailure || stdout != "" || stderr != "version_conflict: the stored version is 1\n" {
		t.Errorf("409: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	w.next(t)
	code, stdout, _ = runCLI(t, "-nats", w.url, "profile", "apply", "-f", file, "-expected-version", "9", "-json")
	var e map[string]any
	if code != exitFailure || json.Unmarshal([]byte(stdout), &e) != nil || e["error_type"] != "version_conflict" || e["status_code"] != float64(409) {
		t.Errorf("409 -json: exit %d: %s", code, stdout)
	}
	w.next(t)
}

func TestDelete(t *testing.T) {
	w := startFakeWorker(t)
	code, stdout, stderr := runCLI(t, "user", "delete", "-nats", w.url, "-id", "user-1", "-change-id", "u-9")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := w.next(t)
	if r.subject != "tat.users.commands" || string(r.data) != `{"change_id":"u-9","op":"delete","user_id":"user-1"}` {
		t.Errorf("%s %s", r.subject, r.data)
	}
	if stdout != "deleted user user-1 (version 2)\n" {
		t.Errorf("stdout %q", stdout)
	}
}

func TestAttestPublishes(t *testing.T) {
	w := startFakeWorker(t)
	tokenFile := writeFile(t, "  eyJ.a.b\n")
	code, stdout, stderr := runCLI(t, "attest", "-nats", w.url, "-profile", "p-1", "-token-file", tokenFile,
		"-duration", "60", "-claims", `{"plan":"pro","n":1.50}`, "-request-id", "r-1", "-app", "web")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := w.next(t)
	want := `{"request_id":"r-1","profile_id":"p-1","token":"eyJ.a.b","session_duration_minutes":60,"session_custom_claims":{"n":1.50,"plan":"pro"}}`
	if r.subject != "tat.attest.requests.web" || string(r.data) != want || r.header.Get(jetstream.MsgIDHeader) != "r-1" {
		t.Errorf("%s %v\n%s\nwant %s", r.subject, r.header, r.data, want)
	}
	// The summary, then the secret on its own line, in clear.
	if !strings.Contains(stdout, "status:") || !strings.Contains(stdout, "user_id:    user-1\n") ||
		!strings.Contains(stdout, "\n\nsession_token: tat_st_secret\n") {
		t.Errorf("%s", stdout)
	}

	// No reply within -timeout: exit 1, saying the request is stored and
	// how to get its outcome.
	code, _, stderr = runCLI(t, "attest", "-nats", w.url, "-timeout", "500ms", "-profile", "p-1", "-token", "silent", "-request-id", "r-2")
	if code != exitFailure || !strings.Contains(stderr, "no reply within 500ms; r-2 is stored in TAT_ATTEST as seq 2") ||
		!strings.Contains(stderr, "-request-id r-2") || strings.Count(stderr, "\n") != 1 {
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
	code, stdout, stderr := runCLI(t, "sessions", "authenticate", "-nats", w.url, "-token", "st", "-duration", "30", "-json")
	if code != exitOK {
		t.Fatalf("authenticate: exit %d: %s%s", code, stdout, stderr)
	}
	if r := w.next(t); r.subject != "tat.sessions.authenticate" || string(r.data) != `{"session_token":"st","session_duration_minutes":30}` {
		t.Errorf("request %s %s", r.subject, r.data)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep["session_token"] != "tat_st_x" || rep["session_jwt"] != "eyJ.x.y" {
		t.Errorf("-json does not reveal the secrets to the caller: %s", stdout)
	}
	code, stdout, stderr = runCLI(t, "sessions", "revoke", "-nats", w.url, "-session-id", "session-1")
	if code != exitFailure || stdout != "" || stderr != "session_not_found: no such session\n" {
		t.Errorf("revoke (404): exit %d: %q %q", code, stdout, stderr)
	}
	if r := w.next(t); r.subject != "tat.sessions.admin.revoke" || string(r.data) != `{"session_id":"session-1"}` {
		t.Errorf("revoke request %s %s", r.subject, r.data)
	}
	// A session token is a bearer proof: the applications' endpoint.
	code, _, stderr = runCLI(t, "sessions", "revoke", "-nats", w.url, "-session-token", "tat_st_y")
	if code != exitFailure || stderr != "session_not_found: no such session\n" {
		t.Errorf("revoke by token (404): exit %d: %q", code, stderr)
	}
	if r := w.next(t); r.subject != "tat.sessions.revoke" || string(r.data) != `{"session_token":"tat_st_y"}` {
		t.Errorf("revoke request %s %s", r.subject, r.data)
	}
	code, stdout, _ = runCLI(t, "sessions", "jwks", "-nats", w.url, "-json")
	if code != exitOK || stdout != "{\n  \"keys\": []\n}\n" {
		t.Errorf("jwks: exit %d: %q", code, stdout)
	}
	w.next(t)
	code, _, stderr = runCLI(t, "sessions", "jwks", "-nats", w.url, "-prefix", "other")
	if code != exitFailure || !strings.Contains(stderr, "nobody answers on other.sessions.jwks") {
		t.Errorf("no service: exit %d: %s", code, stderr)
	}
}

func TestEvents(t *testing.T) {
	w := startFakeWorker(t)
	ctx := context.Background()
	publish := func(typ string) {
		t.Helper()
		ev := `{"specversion": "1.0", "id": "evt-` + typ + `", "source": "attestd", "type": "tat.` + typ + `",
			"time": "2026-11-25T12:00:00Z", "datacontenttype": "application/json", "data": {"user_id": "user-1"}}`
		if _, err := w.js.Publish(ctx, "tat.events."+typ, []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	for _, typ := range []string{"session.created", "attest.failed", "session.updated"} {
		publish(typ)
	}

	code, stdout, stderr := runCLI(t, "events", "-nats", w.url, "-replay", "-type", "session.>", "-n", "2", "-json")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) != 2 || !strings.Contains(lines[0], "session.created") || !strings.Contains(lines[1], "session.updated") {
		t.Fatalf("exit %d: %q %s", code, stdout, stderr)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil || ev["id"] != "evt-session.created" || ev["data"].(map[string]any)["user_id"] != "user-1" {
		t.Errorf("not the event on one line: %s", lines[0])
	}

	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-replay", "-no-follow")
	if code != exitOK || strings.Count(stdout, "\n") != 4 || !strings.HasPrefix(stdout, "SEQ     TIME                  TYPE") ||
		!strings.Contains(stdout, "\n3       2026-11-25T12:00:00Z  session.updated      user=user-1\n") {
		t.Errorf("-no-follow: exit %d:\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-replay", "-no-follow", "-filter", "user.>,profile.>")
	if code != exitOK || stdout != "no events\n" {
		t.Errorf("-no-follow with nothing: exit %d: %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-since", "1h", "-no-follow", "-type", "tat.attest.failed", "-json")
	if code != exitOK || strings.Count(stdout, "\n") != 1 {
		t.Errorf("-since: exit %d: %s", code, stdout)
	}
	// -until: the events' time is 2026-11-25T12:00:00Z.
	code, stdout, _ = runCLI(t, "events", "-nats", w.url, "-replay", "-until", "2026-11-25T11:00:00Z", "-json")
	if code != exitOK || stdout != "" {
		t.Errorf("-until before every event: exit %d: %s", code, stdout)
	}

	// Without -replay, only events published from now on.
	var wg sync.WaitGroup
	var got string
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, got, _ = runCLI(t, "events", "-nats", w.url, "-n", "1", "-type", "user.created", "-json")
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
	if code != exitFailure || !strings.Contains(stderr, "no stream takes other.events.>") {
		t.Errorf("no stream: exit %d: %s", code, stderr)
	}
}
