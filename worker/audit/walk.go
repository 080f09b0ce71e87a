package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Check walks the command stream and the events stream and reports every
// sequence of the window that is not accounted for by exactly one event.
func Check(ctx context.Context, js jetstream.JetStream, o Options) (Report, error) {
	if !o.Since.IsZero() || !o.Until.IsZero() {
		if o.FromSeq != 0 || o.ToSeq != 0 {
			return Report{}, errors.New("audit: give a window of sequences or of time, not both")
		}
	}
	c, err := readCommands(ctx, js, o)
	if err != nil {
		return Report{}, err
	}
	start := time.Time{}
	if !o.Since.IsZero() {
		start = o.Since.Add(-EventsMargin)
	}
	ev, err := readEvents(ctx, js, o.Events, start, o.Progress)
	if err != nil {
		return Report{}, err
	}
	// Requests published during the walk are outside the window, but
	// their events may have been read: a sequence is unknown only beyond
	// the stream's last after the events were read.
	s, err := js.Stream(ctx, o.Commands)
	if err != nil {
		return Report{}, fmt.Errorf("stream %s: %w", o.Commands, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("stream %s: %w", o.Commands, err)
	}
	c.lastAfter = info.State.LastSeq
	return evaluate(o, c, ev), nil
}

// Summarize counts the attest outcomes whose events the events stream
// stored in [since, until) (until zero: up to now).
func Summarize(ctx context.Context, js jetstream.JetStream, events string, since, until time.Time, progress func(string, uint64, uint64)) (Summary, error) {
	ev, err := readEvents(ctx, js, events, since, progress)
	if err != nil {
		return Summary{}, err
	}
	var in []record
	for _, r := range ev.records {
		if until.IsZero() || r.storedAt.Before(until) {
			in = append(in, r)
		}
	}
	return summarize(since, until, in), nil
}

// readCommands reads the command stream's bounds and the sequences still
// in it. In a work queue those are the messages not yet acknowledged:
// each is found with one "next message at or after" request, so the cost
// follows what is pending, not the length of the stream.
func readCommands(ctx context.Context, js jetstream.JetStream, o Options) (commands, error) {
	s, err := js.Stream(ctx, o.Commands)
	if err != nil {
		return commands{}, fmt.Errorf("stream %s: %w", o.Commands, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return commands{}, fmt.Errorf("stream %s: %w", o.Commands, err)
	}
	c := commands{first: info.State.FirstSeq, last: info.State.LastSeq, present: map[uint64]time.Time{}}
	next := max(c.first, o.FromSeq, 1)
	for info.State.Msgs > 0 && next <= c.last {
		m, err := s.GetMsg(ctx, next, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return commands{}, fmt.Errorf("read %s at %d: %w", o.Commands, next, err)
		}
		if m.Sequence > c.last {
			break
		}
		c.present[m.Sequence] = m.Time
		next = m.Sequence + 1
		if o.Progress != nil {
			o.Progress("reading "+o.Commands, uint64(len(c.present)), info.State.Msgs)
		}
	}
	return c, nil
}

// readEvents reads the events stream from start (zero: its first message)
// up to its last message at the time of the call.
func readEvents(ctx context.Context, js jetstream.JetStream, stream string, start time.Time, progress func(string, uint64, uint64)) (eventsInfo, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return eventsInfo{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return eventsInfo{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	ev := eventsInfo{first: info.State.FirstSeq, deleted: uint64(info.State.NumDeleted)}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return ev, nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if !start.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return eventsInfo{}, fmt.Errorf("consumer on %s: %w", stream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return eventsInfo{}, fmt.Errorf("consumer on %s: %w", stream, err)
	}
	if ci.NumPending == 0 {
		return ev, nil
	}
	var seq, base uint64
	empty := 0
	for seq < last {
		if err := ctx.Err(); err != nil {
			return eventsInfo{}, fmt.Errorf("read %s: at %d of %d: %w", stream, seq, last, err)
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return eventsInfo{}, fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			seq = md.Sequence.Stream
			if base == 0 {
				base = seq
			}
			rec := parse(seq, m.Data())
			rec.storedAt = md.Timestamp
			ev.records = append(ev.records, rec)
			if md.NumPending == 0 {
				last = seq // caught up: nothing more is pending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return eventsInfo{}, fmt.Errorf("read %s: %w", stream, err)
		}
		if n == 0 {
			if empty++; empty == 5 {
				return eventsInfo{}, fmt.Errorf("read %s: no message for 10s at %d of %d", stream, seq, last)
			}
			continue
		}
		empty = 0
		if progress != nil {
			progress("reading "+stream, seq-base+1, last-base+1)
		}
	}
	return ev, nil
}
