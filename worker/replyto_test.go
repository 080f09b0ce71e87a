package worker

import (
	"strings"
	"testing"
)

func replyConfig() Config {
	c := Defaults()
	c.ReplyPrefixes = []string{"_INBOX.", "_INBOX_admin.", "_INBOX_app1.", "_INBOX_app2.", "_R_."}
	c.AppReplyPrefixes = map[string]string{"app1": "_INBOX_app1.", "app2": "_INBOX_app2."}
	return c
}

// TestReplyRefusal is the table of the one reply rule that commands and
// every service follow.
func TestReplyRefusal(t *testing.T) {
	t.Parallel()
	c := replyConfig()
	for _, tc := range []struct {
		arrival, reply string
		refused        string // a piece of the reason; "" when allowed
	}{
		// Anywhere: well-formed, no $, not under the prefix, under TAT_REPLY_PREFIXES.
		{"tat.sessions.authenticate", "_INBOX_app1.abc.1", ""},
		{"tat.sessions.authenticate", "_INBOX_app2.abc.1", ""},
		{"tat.sessions.authenticate", "_R_.x1.y2", ""},
		{"tat.profiles.commands", "_INBOX_admin.k", ""},
		{"tat.sessions.authenticate", "", "no reply subject"},
		{"tat.sessions.authenticate", "_INBOX.a b", "literal"},
		{"tat.sessions.authenticate", "_INBOX.*", "literal"},
		{"tat.sessions.authenticate", "_INBOX.>", "literal"},
		{"tat.sessions.authenticate", "_INBOX..x", "literal"},
		{"tat.sessions.authenticate", "_INBOX.x.", "literal"},
		{"tat.sessions.authenticate", "_INBOX." + strings.Repeat("x", 300), "literal"},
		{"tat.sessions.authenticate", "$JS.API.STREAM.DELETE.TAT_EVENTS", "$ subject"},
		{"tat.sessions.authenticate", "$KV.TAT_JWKS.k", "$ subject"},
		{"tat.sessions.authenticate", "tat.events.stolen", "subject prefix"},
		{"tat.sessions.authenticate", "tat", "subject prefix"},
		{"tat.attest.requests.app1", "tat.attest.requests.app1", "subject prefix"},
		{"tat.sessions.authenticate", "_INBOX_worker.x", "TAT_REPLY_PREFIXES"},
		{"tat.sessions.authenticate", "_INBOX_app10.x", "TAT_REPLY_PREFIXES"},
		{"tat.sessions.authenticate", "elsewhere.x", "TAT_REPLY_PREFIXES"},
		// An application's attest requests reply under its own prefix alone.
		{"tat.attest.requests.app1", "_INBOX_app1.r", ""},
		{"tat.attest.requests.app1", "_INBOX_app2.r", "application app1's prefix"},
		{"tat.attest.requests.app1", "_INBOX_admin.r", "application app1's prefix"},
		{"tat.attest.requests.app1", "_R_.a.b", "application app1's prefix"},
		{"tat.attest.requests.app2", "_INBOX_app2.r", ""},
		// And its prefix takes no other attest request's reply.
		{"tat.attest.requests", "_INBOX_app1.r", "application app1's prefix, for a request that is not app1's"},
		{"tat.attest.requests.app3", "_INBOX_app2.r", "application app2's prefix"},
		{"tat.attest.requests.app3", "_INBOX_admin.r", ""},
		{"tat.attest.requests", "_R_.a.b", ""},
	} {
		got := c.replyRefusal(tc.arrival, tc.reply)
		if (got == "") != (tc.refused == "") || !strings.Contains(got, tc.refused) {
			t.Errorf("reply to %q for a request on %s: got %q, want %q", tc.reply, tc.arrival, got, tc.refused)
		}
		if got != "" && tc.reply != "" && strings.Contains(got, tc.reply) {
			t.Errorf("the reason quotes the subject: %q", got)
		}
	}
	// The default allows inboxes only.
	d := Defaults()
	if got := d.replyRefusal("tat.sessions.jwks", "_INBOX.abc"); got != "" {
		t.Errorf("default refuses an inbox: %s", got)
	}
	if got := d.replyRefusal("tat.sessions.jwks", "_R_.abc"); got == "" {
		t.Error("default allows _R_.")
	}
}

func TestReplyPrefixSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"none", func(c *Config) { c.ReplyPrefixes = nil }, "TAT_REPLY_PREFIXES: must list at least one"},
		{"no trailing dot", func(c *Config) { c.ReplyPrefixes = []string{"_INBOX_app1"} }, "ending in a dot"},
		{"wildcard", func(c *Config) { c.ReplyPrefixes = []string{"_INBOX.>."} }, "ending in a dot"},
		{"dollar", func(c *Config) { c.ReplyPrefixes = []string{"$JS."} }, "ending in a dot"},
		{"under the prefix", func(c *Config) { c.ReplyPrefixes = []string{"tat.replies."} }, "under the subject prefix"},
		{"app outside the list", func(c *Config) { c.AppReplyPrefixes = map[string]string{"app3": "_INBOX_app3."} }, "not under any of TAT_REPLY_PREFIXES"},
		{"bad app name", func(c *Config) { c.AppReplyPrefixes = map[string]string{"app.1": "_INBOX_app1."} }, "not an application name"},
		{"bad app prefix", func(c *Config) { c.AppReplyPrefixes = map[string]string{"app1": "_INBOX_app1"} }, "TAT_APP_REPLY_PREFIXES"},
	} {
		c := replyConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := replyConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
