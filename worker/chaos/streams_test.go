//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// waitOutcomes waits until the attest work queue is empty and acknowledged
// and the events stream holds an outcome for every planned request, then
// returns every stored event.
func (h *harness) waitOutcomes(l *load, timeout time.Duration) []storedEvent {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var quietSince time.Time
	for {
		ai, err1 := h.tryStreamInfo(attestStream)
		ci, err2 := h.consumerInfo()
		quiet := err1 == nil && err2 == nil && ai.State.Msgs == 0 && ci.NumAckPending == 0 && ci.NumPending == 0
		if quiet {
			events := h.readEvents()
			missing := missingOutcomes(l, events)
			if len(missing) == 0 {
				return events
			}
			if quietSince.IsZero() {
				quietSince = time.Now()
			}
			if time.Since(quietSince) > 15*time.Second {
				h.t.Fatalf("the work queue is empty but %d requests have no outcome (lost): %v", len(missing), firstN(missing, 20))
			}
		} else {
			quietSince = time.Time{}
		}
		if time.Now().After(deadline) {
			state := "stream info unavailable"
			if err1 == nil && err2 == nil {
				state = fmt.Sprintf("attest stream holds %d, ack pending %d, pending %d, redelivered %d",
					ai.State.Msgs, ci.NumAckPending, ci.NumPending, ci.NumRedelivered)
			}
			events := h.readEvents()
			missing := missingOutcomes(l, events)
			h.t.Fatalf("after %s: %d of %d requests have no outcome (%s): %v", timeout, len(missing), len(l.reqs), state, firstN(missing, 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func missingOutcomes(l *load, events []storedEvent) []string {
	has := map[string]bool{}
	for _, e := range events {
		if attestEventTypes[e.ev.Type] {
			has[e.data.RequestID] = true
		}
	}
	var out []string
	for _, r := range l.reqs {
		if !has[r.id] {
			out = append(out, r.id)
		}
	}
	return out
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// readEvents reads the whole events stream with an ordered consumer.
func (h *harness) readEvents() []storedEvent {
	h.t.Helper()
	info := h.streamInfo(eventsStream)
	last := info.State.LastSeq
	var out []storedEvent
	if info.State.Msgs == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := h.js.OrderedConsumer(ctx, eventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatalf("events consumer: %v", err)
	}
	var seq uint64
	for seq < last {
		if ctx.Err() != nil {
			h.t.Fatalf("reading events: at %d of %d after 2 minutes", seq, last)
		}
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			seq = md.Sequence.Stream
			e := storedEvent{seq: seq, msgID: m.Headers().Get(jetstream.MsgIDHeader), raw: string(m.Data()), stored: md.Timestamp}
			if err := json.Unmarshal(m.Data(), &e.ev); err != nil {
				h.t.Errorf("event seq %d is not JSON: %.200s", seq, m.Data())
				continue
			}
			if attestEventTypes[e.ev.Type] {
				if err := json.Unmarshal(e.ev.Data, &e.data); err != nil {
					h.t.Errorf("event seq %d data: %v", seq, err)
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// deadLetter is one message of the dead letter stream.
type deadLetter struct {
	MsgID      string `json:"msg_id"`
	Stream     string `json:"stream"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
	raw        string
}

// deadLetters returns every message of the dead letter stream.
func (h *harness) deadLetters() []deadLetter {
	h.t.Helper()
	info := h.streamInfo(deadStream)
	var out []deadLetter
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, deadStream)
	if err != nil {
		h.t.Fatalf("dead letter stream: %v", err)
	}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		d := deadLetter{raw: string(m.Data)}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			h.t.Errorf("dead letter seq %d is not JSON: %s", seq, m.Data)
			continue
		}
		if m.Subject != deadLetterSubj {
			h.t.Errorf("dead letter seq %d on %s, want %s", seq, m.Subject, deadLetterSubj)
		}
		out = append(out, d)
	}
	return out
}
