package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// runCLI runs the command line and returns its exit status and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Setenv("TAT_NATS_URL", "nats://127.0.0.1:1") // nothing here may connect
	cases := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"group without subcommand", []string{"profile"}},
		{"unknown subcommand", []string{"sessions", "list"}},
		{"unknown flag", []string{"keygen", "-out", "x", "-bogus"}},
		{"unknown global flag", []string{"-bogus", "sessions", "jwks"}},
		{"positional argument", []string{"sessions", "jwks", "extra"}},
		{"keygen without -out", []string{"keygen"}},
		{"keygen bad type", []string{"keygen", "-out", "x", "-type", "dsa"}},
		{"keygen bad curve", []string{"keygen", "-out", "x", "-curve", "P-224"}},
		{"keygen small rsa", []string{"keygen", "-out", "x", "-type", "rsa", "-bits", "1024"}},
		{"token mint without flags", []string{"token", "mint"}},
		{"bad -claim", []string{"token", "mint", "-claim", "novalue"}},
		{"bad -claim JSON", []string{"token", "mint", "-claim", "n:={"}},
		{"profile apply without -f", []string{"profile", "apply"}},
		{"user delete without -id", []string{"user", "delete"}},
		{"bad -change-id", []string{"profile", "delete", "-id", "p", "-change-id", "has space"}},
		{"attest without -profile", []string{"attest", "-token", "t"}},
		{"attest without token", []string{"attest", "-profile", "p"}},
		{"attest with both tokens", []string{"attest", "-profile", "p", "-token", "t", "-token-file", "f"}},
		{"attest with both sessions", []string{"attest", "-profile", "p", "-token", "t", "-session-token", "a", "-session-jwt", "b"}},
		{"attest bad claims", []string{"attest", "-profile", "p", "-token", "t", "-claims", "[1]"}},
		{"attest bad request id", []string{"attest", "-profile", "p", "-token", "t", "-request-id", "a/b"}},
		{"attest bad app", []string{"attest", "-profile", "p", "-token", "t", "-app", "a.b"}},
		{"events negative n", []string{"events", "-n", "-1"}},
		{"events replay and since", []string{"events", "-replay", "-since", "1h"}},
		{"events bad since", []string{"events", "-since", "yesterday"}},
		{"events empty filter", []string{"events", "-filter", ","}},
		{"authenticate without session", []string{"sessions", "authenticate"}},
		{"authenticate with both", []string{"sessions", "authenticate", "-session-token", "a", "-session-jwt", "b"}},
		{"revoke with two", []string{"sessions", "revoke", "-session-id", "a", "-session-token", "b"}},
		{"revoke with none", []string{"sessions", "revoke"}},
		{"bad prefix", []string{"-prefix", "a b", "sessions", "jwks"}},
		{"bad timeout", []string{"sessions", "jwks", "-timeout", "0s"}},
		{"help for unknown command", []string{"help", "nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if stderr == "" {
				t.Fatal("a usage error printed nothing on stderr")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runCLI(t, "help")
	if code != exitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, cmd := range commands {
		if !strings.Contains(stdout, cmd.path) {
			t.Errorf("help does not list %q", cmd.path)
		}
	}
	for _, want := range []string{"-nats", "-prefix", "-timeout", "TAT_NATS_URL", "TAT_SUBJECT_PREFIX"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help does not mention %s", want)
		}
	}
	// Each command's help shows its own flags, on stdout, with status 0.
	for _, cmd := range commands {
		if cmd.path == "help" {
			continue
		}
		code, stdout, stderr := runCLI(t, append([]string{"help"}, strings.Fields(cmd.path)...)...)
		if code != exitOK || !strings.Contains(stdout, "usage: attestctl "+cmd.path) {
			t.Errorf("help %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd.path, code, stdout, stderr)
		}
	}
	code, stdout, _ = runCLI(t, "help", "attest")
	if code != exitOK || !strings.Contains(stdout, "-token-file") {
		t.Errorf("help attest does not show -token-file:\n%s", stdout)
	}
	if code, _, _ := runCLI(t, "keygen", "-h"); code != exitOK {
		t.Errorf("keygen -h exit %d, want 0", code)
	}
}

func TestGlobalFlagsBeforeOrAfter(t *testing.T) {
	t.Setenv("TAT_NATS_URL", "")
	t.Setenv("TAT_SUBJECT_PREFIX", "")
	g := defaultGlobals()
	if g.natsURL != defaultNATSURL || g.prefix != defaultPrefix || g.timeout != defaultTimeout {
		t.Fatalf("defaults = %+v", g)
	}
	t.Setenv("TAT_NATS_URL", "nats://example:4222")
	t.Setenv("TAT_SUBJECT_PREFIX", "acme.tat")
	g = defaultGlobals()
	if g.natsURL != "nats://example:4222" || g.prefix != "acme.tat" {
		t.Fatalf("from env = %+v", g)
	}
	if got := g.streamName("EVENTS"); got != "ACME_TAT_EVENTS" {
		t.Errorf("streamName = %q", got)
	}
	if got := (globals{prefix: "my-app"}).streamName("ATTEST"); got != "MY_APP_ATTEST" {
		t.Errorf("streamName = %q", got)
	}

	// A bad prefix given before or after the command name is seen either way.
	for _, args := range [][]string{
		{"-prefix", "bad prefix", "sessions", "jwks"},
		{"sessions", "jwks", "-prefix", "bad prefix"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "bad prefix") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	// A global flag before the name is the default of the same flag after it.
	code, _, stderr := runCLI(t, "-timeout", "0s", "sessions", "jwks")
	if code != exitUsage || !strings.Contains(stderr, "-timeout") {
		t.Errorf("-timeout before the command was lost: exit %d, %q", code, stderr)
	}
}

func TestEventFilters(t *testing.T) {
	g := globals{prefix: "tat"}
	cases := []struct {
		in   string
		want []string
	}{
		{">", []string{"tat.events.>"}},
		{"session.>", []string{"tat.events.session.>"}},
		{"session.created, attest.failed", []string{"tat.events.session.created", "tat.events.attest.failed"}},
		{"tat.events.user.*", []string{"tat.events.user.*"}},
	}
	for _, tc := range cases {
		got, err := eventFilters(g, tc.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("eventFilters(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if got, err := parseSince("90m", now); err != nil || !got.Equal(now.Add(-90*time.Minute)) {
		t.Errorf("90m: %v, %v", got, err)
	}
	if got, err := parseSince("2026-11-25T10:00:00Z", now); err != nil || got.Hour() != 10 {
		t.Errorf("RFC 3339: %v, %v", got, err)
	}
	for _, bad := range []string{"-1h", "yesterday", ""} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

func TestPrintReply(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"success", `{"status_code":200,"user_id":"user-1"}`, false},
		{"no status (jwks)", `{"keys":[]}`, false},
		{"client error", `{"status_code":409,"error_type":"version_conflict"}`, true},
		{"server error", `{"status_code":503}`, true},
		{"not JSON", `oops`, true},
		{"not an object", `[1,2]`, true},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		err := printReply(&out, []byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if !strings.HasSuffix(out.String(), "\n") {
			t.Errorf("%s: output %q does not end in a newline", tc.name, out.String())
		}
	}
	var re *replyError
	err := printReply(io.Discard, []byte(`{"status_code":409,"error_type":"version_conflict"}`))
	if !errors.As(err, &re) || re.status != 409 || !strings.Contains(err.Error(), "409 (version_conflict)") {
		t.Errorf("409 reply: %v", err)
	}
	var out bytes.Buffer
	_ = printReply(&out, []byte(`{"status_code":200,"a":{"b":1}}`))
	if want := "{\n  \"status_code\": 200,\n  \"a\": {\n    \"b\": 1\n  }\n}\n"; out.String() != want {
		t.Errorf("not pretty-printed:\n%s", out.String())
	}
}
