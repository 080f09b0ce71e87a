package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// cmdEvents prints events from the <PREFIX>_EVENTS stream, one JSON object
// per line, through an ordered (ephemeral, flow-controlled, self-healing)
// consumer: the audit log is read, never changed.
func cmdEvents(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	replay := fs.Bool("replay", false, "deliver from the start of the stream (default: only events published from now on)")
	since := fs.String("since", "", "deliver from a `TIME`: a duration ago (1h, 30m) or an RFC 3339 time")
	filter := fs.String("filter", ">", "subject `PATTERN` under <prefix>.events., comma-separated for several (e.g. session.>, attest.failed)")
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
	filters, err := eventFilters(c.g, *filter)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case *replay:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case *since != "":
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}

	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := c.jetStream(nc)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(c.ctx, c.g.timeout)
	defer cancel()
	stream := c.g.streamName("EVENTS")
	cons, err := js.OrderedConsumer(setup, stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("no stream %s: is attestd running against this server, with -prefix %s?", stream, c.g.prefix)
	}
	if err != nil {
		return refused(nc, fmt.Errorf("consumer on %s: %w", stream, err))
	}
	iter, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consume %s: %w", stream, err)
	}
	defer iter.Stop()

	if *noFollow {
		// Nothing delivered and nothing pending: nothing matched when the
		// consumer was made, so no message will tell us we are caught up.
		info, err := cons.Info(setup)
		if err != nil {
			return fmt.Errorf("consumer info: %w", err)
		}
		if info.NumPending == 0 && info.Delivered.Consumer == 0 {
			return nil
		}
	}

	for printed := 0; *count == 0 || printed < *count; printed++ {
		msg, err := iter.Next(jetstream.NextContext(c.ctx))
		if err != nil {
			if c.ctx.Err() != nil {
				return nil // Ctrl-C is how a watch ends
			}
			return refused(nc, fmt.Errorf("read %s: %w", stream, err))
		}
		line := msg.Data()
		var buf bytes.Buffer
		if json.Compact(&buf, line) == nil {
			line = buf.Bytes()
		}
		if _, err := fmt.Fprintf(c.stdout, "%s\n", line); err != nil {
			return err
		}
		if *noFollow {
			if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
				return nil
			}
		}
	}
	return nil
}

// eventFilters turns -filter into stream subjects: each comma-separated
// pattern goes under <prefix>.events., unless it is already written in full.
func eventFilters(g globals, patterns string) ([]string, error) {
	base := g.subject("events") + "."
	var out []string
	for p := range strings.SplitSeq(patterns, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, " \t\r\n") {
			return nil, usageErrorf("-filter %q: a subject pattern has no spaces", p)
		}
		if !strings.HasPrefix(p, base) {
			p = base + p
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, usageErrorf("-filter is empty")
	}
	return out, nil
}

// parseSince reads -since: a duration before now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErrorf("-since %s: give a positive duration (how long ago)", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErrorf("-since %q is neither a duration (1h) nor an RFC 3339 time", s)
	}
	return t, nil
}
