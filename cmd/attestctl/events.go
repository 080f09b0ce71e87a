package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tat-worker/attest/client"
)

// cmdEvents prints events of the <PREFIX>_EVENTS stream through the
// client's ordered consumer (ephemeral, flow-controlled, self-healing):
// the audit log is read, never changed.
func cmdEvents(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	replay := fs.Bool("replay", false, "deliver from the start of the stream (default: only events published from now on)")
	since := fs.String("since", "", "deliver from a `TIME`: a duration ago (1h, 30m) or an RFC 3339 time")
	until := fs.String("until", "", "stop at a `TIME` (a duration ago, or an RFC 3339 time, past or to come): no event after it is printed")
	var types stringList
	fs.Var(&types, "type", "only events of this type `PATTERN`, NATS wildcards allowed: session.created, 'session.>', '*.failed' (repeatable; \"tat.\" optional)")
	filter := fs.String("filter", "", "comma-separated -type `PATTERNS` (the older spelling)")
	profile := fs.String("profile", "", "only events about or naming the profile `PROFILE_ID`")
	user := fs.String("user", "", "only events about or naming the user `USER_ID`")
	count := fs.Int("n", 0, "stop after `COUNT` events (0: no limit)")
	noFollow := fs.Bool("no-follow", false, "stop once caught up: print the events stored when it starts, then exit (with -replay or -since)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *count < 0 {
		return usageErrorf("-n must not be negative")
	}
	if *replay && *since != "" {
		return usageErrorf("give -replay or -since, not both")
	}
	patterns := append([]string{}, types...)
	if isSet(fs, "filter") {
		parts := strings.Split(*filter, ",")
		if strings.TrimSpace(strings.Join(parts, "")) == "" {
			return usageErrorf("-filter is empty")
		}
		patterns = append(patterns, parts...)
	}
	f := client.EventFilter{ProfileID: *profile, UserID: *user, UntilCaughtUp: *noFollow}
	var err error
	if f.Types, err = eventTypes(c.g, patterns); err != nil {
		return err
	}
	now := time.Now()
	switch {
	case *replay:
		f.StartSeq = 1
	case *since != "":
		if f.StartTime, err = parseSince(*since, now); err != nil {
			return err
		}
	}
	var end time.Time
	if *until != "" {
		if end, err = parseTime("-until", *until, now); err != nil {
			return err
		}
		if !f.StartTime.IsZero() && !end.After(f.StartTime) {
			return usageErrorf("-until must be after -since")
		}
		if !end.After(now) {
			f.UntilCaughtUp = true // nothing to come is printed: no need to follow
		}
	}

	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	ctx := c.ctx
	if !end.IsZero() && !f.UntilCaughtUp {
		// Following: stop when the time comes, even if no event does.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	out := newEventWriter(c)
	printed := 0
	for ev, err := range cl.Events(ctx, f) {
		if err != nil && ev == nil {
			return c.explain(cn, err)
		}
		if !end.IsZero() && ev.Time.After(end) {
			break
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "attestctl events: %v\n", strings.TrimPrefix(err.Error(), "tat: "))
		}
		if err := out.write(ev); err != nil {
			return err
		}
		if printed++; *count > 0 && printed >= *count {
			break
		}
	}
	if printed == 0 && f.UntilCaughtUp && !c.g.json {
		_, err := fmt.Fprintln(c.stdout, "no events")
		return err
	}
	return nil
}

// eventTypes turns -type patterns into event types for the client:
// "session.>", "tat.session.>" and the stream subject
// "<prefix>.events.session.>" all name the same events.
func eventTypes(g globals, patterns []string) ([]string, error) {
	base := g.subject("events") + "."
	var out []string
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, " \t\r\n") {
			return nil, usageErrorf("-type %q: a type pattern has no spaces", p)
		}
		if rest, ok := strings.CutPrefix(p, base); ok {
			p = rest
		}
		if p == ">" || !strings.HasPrefix(p, "tat.") {
			p = "tat." + p
		}
		out = append(out, p)
	}
	return out, nil
}

// parseSince reads -since: a duration before now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	return parseTime("-since", s, now)
}

// parseTime reads a time flag: a duration before now or an RFC 3339 time.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErrorf("%s %s: give a positive duration (how long ago)", name, s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q is neither a duration (1h) nor an RFC 3339 time", name, s)
	}
	return t, nil
}

// eventWriter prints events: one JSON object per line with -json, else one
// line each of fixed columns (a table that can be followed as it grows).
type eventWriter struct {
	c      *cli
	header bool
}

func newEventWriter(c *cli) *eventWriter { return &eventWriter{c: c} }

const eventLine = "%-6s  %-20s  %-19s  %s\n"

func (w *eventWriter) write(ev *client.Event) error {
	if w.c.g.json {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w.c.stdout, "%s\n", b)
		return err
	}
	if !w.header {
		w.header = true
		if _, err := fmt.Fprintf(w.c.stdout, eventLine, "SEQ", "TIME", "TYPE", "DETAILS"); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w.c.stdout, eventLine, itoa(ev.Sequence), when(ev.Time), strings.TrimPrefix(ev.Type, "tat."), eventDetails(ev))
	return err
}

// eventDetails says in a few words what an event is about.
func eventDetails(ev *client.Event) string {
	var parts []string
	add := func(k, v string) {
		if v != "" && v != "-" {
			parts = append(parts, k+"="+v)
		}
	}
	switch d := ev.Data.(type) {
	case *client.SessionEventData:
		add("user", d.UserID)
		add("session", d.Session.SessionID)
		add("profile", d.ProfileID)
	case *client.SessionRevokedData:
		add("user", d.UserID)
		add("session", d.SessionID)
	case *client.AttestVerifiedData:
		add("user", d.UserID)
		add("profile", d.ProfileID)
		add("request", d.RequestID)
	case *client.AttestFailedData:
		add("error", d.ErrorType)
		add("profile", d.ProfileID)
		add("request", d.RequestID)
	case *client.ProfileResult:
		add("profile", d.Profile.ProfileID)
		add("version", itoa(d.Profile.Version))
	case *client.ProfileRejectedData:
		add("error", d.ErrorType)
		add("profile", d.ProfileID)
		add("change", d.ChangeID)
	case *client.UserResult:
		add("user", d.User.UserID)
		add("version", itoa(d.User.Version))
	case *client.UserRejectedData:
		add("error", d.ErrorType)
		add("user", d.UserID)
		add("change", d.ChangeID)
	case *client.JWKSRefreshedData:
		add("profile", d.ProfileID)
		add("added", strings.Join(d.AddedKIDs, ","))
		add("removed", strings.Join(d.RemovedKIDs, ","))
	case *client.JWKSRefreshFailedData:
		add("profile", d.ProfileID)
		add("error", d.ErrorMessage)
	default:
		// A type the client does not decode (attest.repeated,
		// keys.rotated, ...): its data's ids, as sent.
		var m map[string]any
		if json.Unmarshal(ev.RawData, &m) == nil {
			for _, k := range [][2]string{{"request_id", "request"}, {"change_id", "change"}, {"trigger", "trigger"},
				{"first_stream_seq", "first_seq"}, {"error_type", "error"}} {
				if v, ok := m[k[0]]; ok && v != nil {
					add(k[1], fmt.Sprint(v))
				}
			}
			if key, ok := m["key"].(map[string]any); ok {
				add("key", fmt.Sprint(key["kid"]))
			}
		}
	}
	return strings.Join(parts, " ")
}
