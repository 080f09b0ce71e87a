package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// TestLockedDownWalkthrough is the README's "Deploying safely" on the
// shipped NATS configuration: attestctl as the admin applies a profile and
// a user, as app1 attests on its own subject and authenticates, as the
// admin revokes, as the auditor reads the audit log; each identity is
// refused what is not its own, in one line that says so.
func TestLockedDownWalkthrough(t *testing.T) {
	env := workertest.NewShippedEnv(t)
	env.StartWorker(func(c *worker.Config) {
		c.ReplyPrefixes = []string{"_INBOX_admin.", "_INBOX_app1.", "_INBOX_app2.", "_R_."}
		c.AppReplyPrefixes = map[string]string{"app1": "_INBOX_app1.", "app2": "_INBOX_app2."}
	}, nil)
	root, _ := filepath.Abs("../..")
	t.Chdir(t.TempDir())
	timeout := "3s"
	as := func(id string, wantCode int, args ...string) (string, string) {
		t.Helper()
		for k, v := range env.Shipped.Env(id) {
			t.Setenv(k, v)
		}
		t.Setenv("TAT_NATS_JS_API_PREFIX", "")
		if id == "auditor" {
			t.Setenv("TAT_NATS_JS_API_PREFIX", "$JS.TAT.API")
		}
		var out, errb bytes.Buffer
		code := run(append([]string{"-timeout", timeout}, args...), &out, &errb)
		if code != wantCode {
			t.Fatalf("as %s: attestctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", id, strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	as("admin", 0, "keygen", "-out", "dev")
	as("admin", 0, "profile", "apply", "-f", filepath.Join(root, "examples/profile.json"), "-pem", "dev.pub.pem")
	as("admin", 0, "user", "apply", "-f", filepath.Join(root, "examples/user.json"))
	token, _ := as("admin", 0, "token", "mint", "-key", "dev.key.pem", "-iss", "https://dev.example.com/", "-aud", "my-app", "-email", "ada@example.com")
	out, _ := as("app1", 0, "attest", "-json", "-app", "app1", "-profile", "trusted-auth-token-profile-dev", "-token", strings.TrimSpace(token), "-duration", "60")
	var rep struct {
		SessionToken string `json:"session_token"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.SessionToken == "" {
		t.Fatalf("attest: %v\n%s", err, out)
	}
	as("app1", 0, "sessions", "authenticate", "-session-token", rep.SessionToken)
	// The admin reads what the worker holds.
	if out, _ := as("admin", 0, "sessions", "list", "-user", "user-ada"); strings.Count(out, "\n") != 2 {
		t.Errorf("sessions list as admin:\n%s", out)
	}
	as("admin", 0, "user", "get", "-email", "ada@example.com")
	as("admin", 0, "keys", "rotate")
	if keys, _ := as("admin", 0, "keys", "list"); !strings.Contains(keys, "signing") {
		t.Errorf("keys list: %s", keys)
	}
	// An application revokes with the session token; the admin by user id.
	as("app1", 0, "sessions", "revoke", "-session-token", rep.SessionToken)
	if out, _ := as("admin", 0, "sessions", "revoke", "-user", "user-ada"); out != "user user-ada has no active session to revoke\n" {
		t.Errorf("sessions revoke -user as admin: %q", out)
	}
	events, _ := as("auditor", 0, "events", "-replay", "-no-follow", "-json")
	for _, typ := range []string{"tat.profile.created", "tat.user.created", "tat.session.created", "tat.session.revoked"} {
		if !strings.Contains(events, `"type":"`+typ+`"`) {
			t.Errorf("audit log lacks %s:\n%s", typ, events)
		}
	}

	// What is not theirs.
	timeout = "1s"
	for _, c := range []struct {
		id   string
		args []string
		want string
	}{
		{"app1", []string{"profile", "delete", "-id", "trusted-auth-token-profile-dev"}, `Permissions Violation for Publish to "tat.profiles.commands"`},
		{"app1", []string{"attest", "-app", "app2", "-profile", "p", "-token", "t"}, `Permissions Violation for Publish to "tat.attest.requests.app2"`},
		{"app1", []string{"events", "-replay", "-no-follow"}, "Permissions Violation for Publish"},
		{"admin", []string{"attest", "-app", "app1", "-profile", "p", "-token", "t"}, `Permissions Violation for Publish to "tat.attest.requests.app1"`},
		{"auditor", []string{"sessions", "jwks"}, `Permissions Violation for Publish to "tat.sessions.jwks"`},
		{"app1", []string{"keys", "rotate"}, `Permissions Violation for Publish to "tat.keys.commands"`},
		{"app1", []string{"keys", "list"}, `Permissions Violation for Publish to "tat.reads.`},
		{"app1", []string{"sessions", "revoke", "-user", "user-ada"}, `Permissions Violation for Publish to "tat.sessions.admin.revoke"`},
		{"app2", []string{"sessions", "revoke", "-id", "session-00000000-0000-4000-8000-000000000000"}, `Permissions Violation for Publish to "tat.sessions.admin.revoke"`},
	} {
		_, stderr := as(c.id, 1, c.args...)
		if !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("as %s: attestctl %s: stderr %q, want one line with %q", c.id, strings.Join(c.args, " "), stderr, c.want)
		}
	}
	// The same identities as NATS CLI contexts, with no TAT_NATS_* set.
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	for _, id := range []string{"admin", "auditor"} {
		e := env.Shipped.Env(id)
		nctx := map[string]string{"url": e["TAT_NATS_URL"], "user": id, "password": e["TAT_NATS_PASSWORD"], "ca": e["TAT_NATS_TLS_CA"],
			"cert": e["TAT_NATS_TLS_CERT"], "key": e["TAT_NATS_TLS_KEY"], "inbox_prefix": e["TAT_NATS_INBOX_PREFIX"]}
		if id == "auditor" {
			nctx["jetstream_api_prefix"] = "$JS.TAT.API"
		}
		b, _ := json.Marshal(nctx)
		writeContext(t, cfg, "tat-"+id, string(b))
		for k := range e {
			t.Setenv(k, "")
		}
	}
	t.Setenv("TAT_NATS_JS_API_PREFIX", "")
	byContext := func(name string, args ...string) string {
		t.Helper()
		var o, e bytes.Buffer
		if code := run(append([]string{"-timeout", "3s", "-context", name}, args...), &o, &e); code != 0 {
			t.Fatalf("-context %s %s: exit %d: %s", name, strings.Join(args, " "), code, e.String())
		}
		return o.String()
	}
	if out := byContext("tat-admin", "profile", "list"); !strings.Contains(out, "trusted-auth-token-profile-dev") {
		t.Errorf("profile list by context:\n%s", out)
	}
	if out := byContext("tat-auditor", "events", "-replay", "-no-follow", "-type", "session.revoked"); strings.Count(out, "\n") != 2 {
		t.Errorf("events by context:\n%s", out)
	}

	// An admin who forgot its inbox prefix is told so.
	for k, v := range env.Shipped.Env("admin") {
		t.Setenv(k, v)
	}
	t.Setenv("TAT_NATS_INBOX_PREFIX", "")
	var o, e bytes.Buffer
	if code := run([]string{"-timeout", timeout, "sessions", "jwks"}, &o, &e); code != 1 || !strings.Contains(e.String(), "TAT_NATS_INBOX_PREFIX") {
		t.Errorf("admin without its inbox prefix: exit %d: %s", code, e.String())
	}
}
