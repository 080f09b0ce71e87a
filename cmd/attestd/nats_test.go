package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tat-worker/attest/worker/embedded"
	"github.com/tat-worker/attest/worker/workertest"
)

// TestNATSSettingsAreChecked: wrong TAT_NATS_* settings are named among
// the settings' problems, and no error quotes the password.
func TestNATSSettingsAreChecked(t *testing.T) {
	pw := "Sup3r-secret-pw"
	_, err := loadSettings(env(map[string]string{"TAT_NATS_URL": "nats://u:" + pw + "@h:4222", "TAT_NATS_USER": "worker", "TAT_NATS_PASSWORD": pw,
		"TAT_NATS_TLS_CERT": "/nonexistent/cert.pem", "TAT_CLOCK_SKEW": "soon"}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"TAT_NATS_TLS_KEY: must be set with TAT_NATS_TLS_CERT", "give one of", "TAT_CLOCK_SKEW"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("the password is in the error:\n%v", err)
	}
	// Credentials without a server of one's own.
	_, err = loadSettings(env(map[string]string{"TAT_NATS_USER": "worker", "TAT_NATS_PASSWORD": pw}))
	if err == nil || !strings.Contains(err.Error(), "set TAT_NATS_URL") || strings.Contains(err.Error(), pw) {
		t.Fatalf("credentials for the embedded server: %v", err)
	}
}

// TestWrongNATSPasswordStopsStartUp: a refused credential ends attestd at
// start with one line naming the settings, instead of retrying forever;
// the log names the server with the password redacted.
func TestWrongNATSPasswordStopsStartUp(t *testing.T) {
	sn := workertest.StartShippedNATS(t)
	logs := captureLog(t)
	ferret, err := embedded.StartFerret("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ferret.Stop)
	httpAddr, _ := embedded.FreeAddr()
	settings := sn.Env("worker")
	settings["TAT_NATS_PASSWORD"] = "wrong-" + sn.Passwords["worker"]
	settings["TAT_MONGODB_URI"], settings["TAT_DATA_DIR"], settings["TAT_HTTP_ADDR"] = ferret.URI(), t.TempDir(), httpAddr
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), env(settings)) }()
	select {
	case err := <-done:
		want := "nats: authorization violation: check TAT_NATS_USER/TAT_NATS_PASSWORD"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("attestd did not stop")
	}
	// The same password in the URL: redacted in the log.
	settings["TAT_NATS_URL"] = strings.Replace(sn.URL, "://", "://worker:wrong-"+sn.Passwords["worker"]+"@", 1)
	delete(settings, "TAT_NATS_USER")
	delete(settings, "TAT_NATS_PASSWORD")
	err = run(context.Background(), env(settings))
	if want := "nats: authorization violation: check the user and password in TAT_NATS_URL"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if strings.Contains(logs.String(), sn.Passwords["worker"]) || !strings.Contains(logs.String(), "worker:REDACTED@") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var out strings.Builder
	if code := healthcheck(env(map[string]string{"TAT_HTTP_ADDR": addr}), &out); code != 0 {
		t.Fatalf("ready worker: exit %d: %s", code, out.String())
	}
	port := addr[strings.LastIndex(addr, ":"):]
	if code := healthcheck(env(map[string]string{"TAT_HTTP_ADDR": "0.0.0.0" + port}), &out); code != 0 {
		t.Fatalf("0.0.0.0 is asked on the loopback: exit %d: %s", code, out.String())
	}
	ready = false
	if code := healthcheck(env(map[string]string{"TAT_HTTP_ADDR": addr}), &out); code != 1 || !strings.Contains(out.String(), "not ready: 503") {
		t.Fatalf("not ready: exit %d: %s", code, out.String())
	}
}

// TestCredentialRefusedAfterAnOutageEndsTheRun: a worker that started while
// NATS was down (it connects in the background) stops with the reason
// once the server comes up and refuses its credential, instead of waiting
// forever unready.
func TestCredentialRefusedAfterAnOutageEndsTheRun(t *testing.T) {
	natsAddr, _ := embedded.FreeAddr()
	httpAddr, _ := embedded.FreeAddr()
	ferret, err := embedded.StartFerret("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ferret.Stop)
	logs := captureLog(t)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), env(map[string]string{"TAT_NATS_URL": "nats://" + natsAddr, "TAT_NATS_USER": "worker",
			"TAT_NATS_PASSWORD": "wrong", "TAT_MONGODB_URI": ferret.URI(), "TAT_DATA_DIR": t.TempDir(), "TAT_HTTP_ADDR": httpAddr}))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "NATS not reachable yet") {
		if time.Now().After(deadline) {
			t.Fatalf("no background connect; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	host, port, _ := net.SplitHostPort(natsAddr)
	p, _ := strconv.Atoi(port)
	srv, err := natsserver.NewServer(&natsserver.Options{Host: host, Port: p, NoSigs: true, NoLog: true,
		Users: []*natsserver.User{{Username: "worker", Password: "right"}}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	select {
	case err := <-done:
		want := "the NATS connection was closed: nats: authorization violation: check TAT_NATS_USER/TAT_NATS_PASSWORD"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("attestd kept running on a refused credential")
	}
}

func TestReplyPrefixSettingsAreRead(t *testing.T) {
	s, err := loadSettings(env(map[string]string{"TAT_REPLY_PREFIXES": "_INBOX_admin., _INBOX_app1.,_R_.",
		"TAT_APP_REPLY_PREFIXES": "app1=_INBOX_app1."}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Worker.ReplyPrefixes, " "); got != "_INBOX_admin. _INBOX_app1. _R_." || s.Worker.AppReplyPrefixes["app1"] != "_INBOX_app1." {
		t.Fatalf("read %q and %v", got, s.Worker.AppReplyPrefixes)
	}
	if d, _ := loadSettings(env(nil)); len(d.Worker.ReplyPrefixes) != 1 || d.Worker.ReplyPrefixes[0] != "_INBOX." {
		t.Fatalf("default %v", d.Worker.ReplyPrefixes)
	}
	_, err = loadSettings(env(map[string]string{"TAT_APP_REPLY_PREFIXES": "app1", "TAT_REPLY_PREFIXES": "_INBOX_app1"}))
	for _, want := range []string{`TAT_APP_REPLY_PREFIXES: "app1" is not name=value`, `TAT_REPLY_PREFIXES: "_INBOX_app1" is not a subject prefix ending in a dot`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// TestAttestdServesOnTheShippedServer: attestd, configured only by its
// settings (the TAT_NATS_* of the worker identity: user, password, CA,
// client certificate; the reply prefixes compose gives it), starts on a
// server that takes TLS only and requires a user and a password (the
// shipped configuration), and serves an attest of an application; the
// password is in no log line.
func TestAttestdServesOnTheShippedServer(t *testing.T) {
	e := workertest.NewShippedEnv(t)
	logs := captureLog(t)
	httpAddr, _ := embedded.FreeAddr()
	settings := e.Shipped.Env("worker")
	settings["TAT_MONGODB_URI"], settings["TAT_DATA_DIR"], settings["TAT_HTTP_ADDR"] = e.MongoURI, t.TempDir(), httpAddr
	settings["TAT_REPLY_PREFIXES"] = "_INBOX_admin.,_INBOX_app1.,_INBOX_app2.,_R_."
	settings["TAT_APP_REPLY_PREFIXES"] = "app1=_INBOX_app1.,app2=_INBOX_app2."
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, env(settings)) }()
	waitReady(t, httpAddr)

	iss := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	rep := e.Request(e.Subject("profiles", "commands"), "", map[string]any{"change_id": "c-1", "op": "upsert", "profile": map[string]any{
		"issuer": iss.Iss, "audience": iss.Aud, "public_keys": []string{iss.PublicPEM()}, "can_jit_provision": true,
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
	if rep["status_code"] != float64(200) {
		t.Fatalf("profile: %v", rep)
	}
	pid := rep["profile"].(map[string]any)["profile_id"].(string)
	rep = e.As("app1").Request(e.Subject("attest", "requests", "app1"), "r-1", map[string]any{"request_id": "r-1", "profile_id": pid,
		"token": iss.Token(map[string]any{"email": "ada@example.com", "jti": "j-1"}), "session_duration_minutes": 60})
	if rep["status_code"] != float64(200) || rep["session_token"] == nil {
		t.Fatalf("attest: %v", rep)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for id, pw := range e.Shipped.Passwords {
		if strings.Contains(logs.String(), pw) {
			t.Fatalf("%s's password is in the log", id)
		}
	}
	if !strings.Contains(logs.String(), "user=worker") || !strings.Contains(logs.String(), "tls=required") {
		t.Errorf("the log does not say how attestd connects:\n%s", logs.String())
	}
}
