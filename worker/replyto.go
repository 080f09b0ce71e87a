package worker

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// replyPrefixPattern is a reply prefix: subject tokens, each ending in a
// dot, so that _INBOX_app1. never matches _INBOX_app10.
var replyPrefixPattern = regexp.MustCompile(`^([A-Za-z0-9_-]+\.)+$`)

// appNamePattern is an application name: one subject token.
var appNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// replyRefusal is the one rule for where the worker sends a reply, which
// may carry bearer secrets (session_token, session_jwt): a command's
// Tat-Reply-To and the reply subject of every service request (sessions,
// reads) go through it. arrival is the subject the request came in on.
// It returns "" when the reply may be sent, else why not (for the log; it
// never quotes the subject).
//
// A reply subject must be one well-formed literal subject, not a "$"
// subject (the server's and JetStream's), not under the subject prefix
// (the worker's own streams and services), under one of ReplyPrefixes.
// An attest request that arrived on <prefix>.attest.requests.<app>, for an
// app of AppReplyPrefixes, replies under that application's prefix alone,
// and no other attest request replies under an application's prefix.
func (c Config) replyRefusal(arrival, reply string) string {
	switch {
	case reply == "":
		return "no reply subject"
	case len(reply) > 256 || strings.ContainsAny(reply, " \t\r\n*>") || slices.Contains(strings.Split(reply, "."), ""):
		return "not a literal subject"
	case strings.HasPrefix(reply, "$"):
		return "a $ subject (the server's, JetStream's)"
	case reply == c.SubjectPrefix || strings.HasPrefix(reply, c.SubjectPrefix+"."):
		return "under the subject prefix (the worker's streams and services)"
	case !slices.ContainsFunc(c.ReplyPrefixes, func(p string) bool { return strings.HasPrefix(reply, p) }):
		return "not under TAT_REPLY_PREFIXES"
	}
	requests := c.subject("attest", "requests")
	if arrival != requests && !strings.HasPrefix(arrival, requests+".") {
		return ""
	}
	app := strings.TrimPrefix(strings.TrimPrefix(arrival, requests), ".")
	if own, ok := c.AppReplyPrefixes[app]; ok {
		if !strings.HasPrefix(reply, own) {
			return fmt.Sprintf("not under application %s's prefix (TAT_APP_REPLY_PREFIXES)", app)
		}
		return ""
	}
	for other, p := range c.AppReplyPrefixes {
		if strings.HasPrefix(reply, p) {
			return fmt.Sprintf("under application %s's prefix, for a request that is not %s's (TAT_APP_REPLY_PREFIXES)", other, other)
		}
	}
	return ""
}

// validateReplyPrefixes checks TAT_REPLY_PREFIXES and
// TAT_APP_REPLY_PREFIXES.
func (c Config) validateReplyPrefixes() []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	prefix := func(name, p string) bool {
		switch {
		case !replyPrefixPattern.MatchString(p):
			bad(name, "%q is not a subject prefix ending in a dot (tokens of A-Za-z0-9_-, like _INBOX.)", p)
		case strings.HasPrefix(p, c.SubjectPrefix+"."):
			bad(name, "%q is under the subject prefix: replies would reach the worker's streams", p)
		default:
			return true
		}
		return false
	}
	if len(c.ReplyPrefixes) == 0 {
		bad("TAT_REPLY_PREFIXES", "must list at least one prefix (default _INBOX.)")
	}
	for _, p := range c.ReplyPrefixes {
		prefix("TAT_REPLY_PREFIXES", p)
	}
	for app, p := range c.AppReplyPrefixes {
		if !appNamePattern.MatchString(app) {
			bad("TAT_APP_REPLY_PREFIXES", "%q is not an application name (one subject token of A-Za-z0-9_-)", app)
			continue
		}
		if prefix("TAT_APP_REPLY_PREFIXES", p) && !slices.ContainsFunc(c.ReplyPrefixes, func(g string) bool { return strings.HasPrefix(p, g) }) {
			bad("TAT_APP_REPLY_PREFIXES", "%s's prefix %q is not under any of TAT_REPLY_PREFIXES, so no reply could reach it", app, p)
		}
	}
	return errs
}
