package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeContext writes a NATS CLI context file under dir (an
// XDG_CONFIG_HOME).
func writeContext(t *testing.T, dir, name, body string) {
	t.Helper()
	d := filepath.Join(dir, "nats", "context")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, name+".json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNATSContextSettings(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	for _, k := range []string{"TAT_NATS_URL", "TAT_NATS_USER", "TAT_NATS_PASSWORD", "TAT_NATS_CREDS", "TAT_NATS_NKEY",
		"TAT_NATS_TLS_CA", "TAT_NATS_TLS_CERT", "TAT_NATS_TLS_KEY", "TAT_NATS_INBOX_PREFIX", envJSAPIPrefix} {
		t.Setenv(k, "")
	}
	// What 'nats context add' writes, with the fields attestctl reads set
	// and the others empty.
	writeContext(t, cfg, "ops", `{"description": "ops", "url": "nats://a:4222,nats://b:4222", "token": "", "user": "ops",
		"password": "s3cret", "creds": "", "nkey": "", "cert": "", "key": "", "ca": "", "nsc": "",
		"jetstream_domain": "", "jetstream_api_prefix": "$JS.TAT.API", "jetstream_event_prefix": "",
		"inbox_prefix": "_INBOX_ops", "user_jwt": "", "color_scheme": "", "tls_first": false}`)
	c := &cli{g: globals{context: "ops", prefix: "tat"}}
	s, jsAPI, _, err := c.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "nats://a:4222,nats://b:4222" || s.User != "ops" || s.Password.Reveal() != "s3cret" || s.InboxPrefix != "_INBOX_ops" || jsAPI != "$JS.TAT.API" {
		t.Errorf("settings %v, js %q", s, jsAPI)
	}
	// -nats still replaces the URL; the TAT_NATS_* settings are not mixed in.
	t.Setenv("TAT_NATS_CREDS", "/nowhere.creds")
	c.g.natsURL = "nats://flag:4222"
	if s, _, _, err = c.settings(); err != nil || s.URL != "nats://flag:4222" || s.CredsFile != "" {
		t.Errorf("with -nats: %v, %v", s, err)
	}

	// jetstream_domain is an API prefix; ~/ is the home directory.
	home := t.TempDir()
	t.Setenv("HOME", home)
	writeContext(t, cfg, "hub", `{"url": "nats://h:4222", "jetstream_domain": "hub", "nkey": "~/user.nk"}`)
	nctx, err := loadNATSContext("hub")
	if err != nil {
		t.Fatal(err)
	}
	if nctx.getenv(envJSAPIPrefix) != "$JS.hub.API" || nctx.getenv("TAT_NATS_NKEY") != filepath.Join(home, "user.nk") {
		t.Errorf("hub: %q %q", nctx.getenv(envJSAPIPrefix), nctx.getenv("TAT_NATS_NKEY"))
	}
	// A file a context names is checked as the setting would be, and the
	// message names the context's field.
	c = &cli{g: globals{context: "hub", prefix: "tat"}}
	if _, _, _, err := c.settings(); err == nil || !strings.Contains(err.Error(), `"nkey" of context "hub"`) || strings.Contains(err.Error(), "TAT_NATS_NKEY") {
		t.Errorf("a missing nkey file: %v", err)
	}

	for name, c := range map[string]struct{ body, want string }{
		"token":   {`{"url": "nats://t:4222", "token": "s3cret"}`, "sets token, which attestctl does not support"},
		"several": {`{"nsc": "nsc://op/acc/user", "socks_proxy": "socks5://p:1080", "tls_first": true}`, "sets nsc, socks_proxy, tls_first"},
		"both-js": {`{"jetstream_domain": "hub", "jetstream_api_prefix": "$JS.X.API"}`, "both jetstream_api_prefix and jetstream_domain"},
		"garbage": {`{not json`, "is not a context file"},
	} {
		writeContext(t, cfg, name, c.body)
		_, err := loadNATSContext(name)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := loadNATSContext("missing"); err == nil || !strings.Contains(err.Error(), "nats context add missing") {
		t.Errorf("missing: %v", err)
	}
	code, _, stderr := runCLI(t, "-context", "missing", "sessions", "jwks")
	if code != exitFailure || !strings.Contains(stderr, filepath.Join(cfg, "nats", "context", "missing.json")) {
		t.Errorf("missing context: exit %d: %s", code, stderr)
	}
}
