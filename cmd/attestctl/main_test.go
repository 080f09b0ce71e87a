package main

import (
	"bytes"
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
		{"unknown subcommand", []string{"sessions", "frob"}},
		{"group with a flag", []string{"profile", "-json"}},
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
		{"events bad until", []string{"events", "-until", "soon"}},
		{"events until before since", []string{"events", "-since", "1h", "-until", "2h"}},
		{"events type with space", []string{"events", "-type", "a b"}},
		{"profile get without -id", []string{"profile", "get"}},
		{"user get without id or email", []string{"user", "get"}},
		{"user get with both", []string{"user", "get", "-id", "u", "-email", "e@x"}},
		{"user list bad limit", []string{"user", "list", "-limit", "1001"}},
		{"user list cursor and all", []string{"user", "list", "-cursor", "c", "-all"}},
		{"sessions list without -user", []string{"sessions", "list"}},
		{"sessions get without -id", []string{"sessions", "get"}},
		{"revoke by id and user", []string{"sessions", "revoke", "-id", "a", "-user", "u"}},
		{"revoke alias and flag", []string{"sessions", "revoke", "-session-id", "a", "-token", "t"}},
		{"attest zero duration", []string{"attest", "-profile", "p", "-token", "t", "-duration", "0"}},
		{"context as a path", []string{"-context", "../x", "sessions", "jwks"}},
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
	for _, want := range []string{"-nats", "-prefix", "-timeout", "-json", "-context", "TAT_NATS_URL", "TAT_SUBJECT_PREFIX", "TAT_NATS_CREDS"} {
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
		if code != exitOK || !strings.Contains(stdout, "usage: attestctl "+cmd.path) || !strings.Contains(stdout, cmd.summary) ||
			!strings.Contains(stdout, "example:\n  attestctl ") && !strings.Contains(stdout, "example:\n  TOKEN=$(attestctl ") {
			t.Errorf("help %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd.path, code, stdout, stderr)
		}
		// --help on the command itself says the same.
		code, again, _ := runCLI(t, append(strings.Fields(cmd.path), "--help")...)
		if code != exitOK || !strings.Contains(again, "usage: attestctl "+cmd.path) {
			t.Errorf("%s --help: exit %d, %q", cmd.path, code, again)
		}
	}
	code, stdout, _ = runCLI(t, "help", "attest")
	if code != exitOK || !strings.Contains(stdout, "-token-file") {
		t.Errorf("help attest does not show -token-file:\n%s", stdout)
	}
	if code, _, _ := runCLI(t, "keygen", "-h"); code != exitOK {
		t.Errorf("keygen -h exit %d, want 0", code)
	}
	// Aliases are shown with the flag they stand for, not apart.
	_, stdout, _ = runCLI(t, "help", "sessions", "revoke")
	if !strings.Contains(stdout, "(also -token)") || strings.Contains(stdout, "same as -") || strings.Contains(stdout, "  -json") {
		t.Errorf("help sessions revoke:\n%s", stdout)
	}
}

func TestGlobalFlagsBeforeOrAfter(t *testing.T) {
	t.Setenv("TAT_NATS_URL", "")
	t.Setenv("TAT_SUBJECT_PREFIX", "")
	g := defaultGlobals()
	if g.natsURL != "" || g.prefix != defaultPrefix || g.timeout != defaultTimeout || g.json {
		t.Fatalf("defaults = %+v", g)
	}
	c := &cli{g: g}
	if s, _, _, err := c.settings(); err != nil || s.URL != defaultNATSURL {
		t.Fatalf("default URL %q, %v", s.URL, err)
	}
	t.Setenv("TAT_NATS_URL", "nats://example:4222")
	t.Setenv("TAT_SUBJECT_PREFIX", "acme.tat")
	g = defaultGlobals()
	c = &cli{g: g}
	if s, _, _, err := c.settings(); err != nil || s.URL != "nats://example:4222" || g.prefix != "acme.tat" {
		t.Fatalf("from env: %q %+v %v", s.URL, g, err)
	}
	c.g.natsURL = "nats://flag:4222"
	if s, _, _, _ := c.settings(); s.URL != "nats://flag:4222" {
		t.Fatalf("-nats does not win over TAT_NATS_URL: %q", s.URL)
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

func TestEventTypes(t *testing.T) {
	g := globals{prefix: "acme"}
	cases := []struct {
		in   string
		want []string
	}{
		{">", []string{"tat.>"}},
		{"session.>", []string{"tat.session.>"}},
		{"session.created, tat.attest.failed", []string{"tat.session.created", "tat.attest.failed"}},
		{"acme.events.user.*", []string{"tat.user.*"}},
		{"*.failed", []string{"tat.*.failed"}},
	}
	for _, tc := range cases {
		got, err := eventTypes(g, strings.Split(tc.in, ","))
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("eventTypes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
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
