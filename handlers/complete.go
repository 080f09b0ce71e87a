package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Input is one command as the worker received it.
type Input struct {
	Data        []byte
	HeaderID    string // Nats-Msg-Id, used when the payload names no id
	StreamSeq   uint64 // stream sequence: the id of last resort
	Stream      string // the stream that holds the command (its events name it)
	Redelivered bool   // an earlier delivery may have done part of the work
	// PublishedAt is when the stream stored the command. A redelivery
	// checks token times as of then (never later than now), so a retry
	// after an outage decides as the first attempt did and cannot leave
	// that attempt's writes orphaned by refusing a token that expired
	// while it waited.
	PublishedAt time.Time
	// ReplyRefused says the worker will not send the reply to the subject
	// the command named (see the worker's reply rules). The command is
	// decided as any other; its outcome event says reply_refused.
	ReplyRefused bool
}

// replyRefusedKey carries Input.ReplyRefused from a command's entry point
// (Handle, Abandon) to where its outcome event is built.
type replyRefusedKey struct{}

func withReplyRefused(ctx context.Context, in Input) context.Context {
	if !in.ReplyRefused {
		return ctx
	}
	return context.WithValue(ctx, replyRefusedKey{}, true)
}

func replyRefused(ctx context.Context) bool {
	v, _ := ctx.Value(replyRefusedKey{}).(bool)
	return v
}

// Output is what the worker sends back: Reply (which alone may carry bearer
// secrets) on the Tat-Reply-To subject.
type Output struct {
	Reply   []byte
	Outcome Outcome
}

// commandID returns the payload's id when valid, else the Nats-Msg-Id when
// valid, else one derived from the stream sequence, so a redelivery of a
// command without an id is still recognised.
func commandID(payloadID string, in Input) string {
	switch {
	case domain.ValidCommandID(payloadID):
		return payloadID
	case domain.ValidCommandID(in.HeaderID):
		return in.HeaderID
	default:
		// '#' is outside the publishers' alphabet: no publisher can name
		// this id and collide with it.
		return "#seq:" + strconv.FormatUint(in.StreamSeq, 10)
	}
}

// Permanent reports whether err is a final answer (a *domain.Error other
// than internal_server_error) rather than a fault worth retrying.
func Permanent(err error) bool {
	var e *domain.Error
	return errors.As(err, &e) && e.Code != domain.ErrInternal.Code
}

// Completer makes an outcome final: it inserts it under its key (the first
// outcome wins), publishes its event once, and applies it locally.
type Completer struct {
	Outcomes OutcomeStore
	Pub      Publisher
	// Apply, when set, hands each published event to the local view.
	Apply func(domain.Event)
}

// Complete stores o unless an outcome exists under its key, publishes the
// stored outcome's event unless it was published, and returns the stored
// outcome and whether this call stored it (false: o's key had an outcome
// already, which is returned). Errors are transient: the caller retries
// the command.
func (c *Completer) Complete(ctx context.Context, o Outcome) (Outcome, bool, error) {
	stored, inserted, err := c.Outcomes.Record(ctx, o)
	if err != nil {
		return Outcome{}, false, fmt.Errorf("record outcome %s: %w", o.Key, err)
	}
	stored, err = c.publish(ctx, stored)
	return stored, inserted, err
}

// Resume finishes an outcome found stored (a redelivery or a duplicate).
func (c *Completer) Resume(ctx context.Context, o Outcome) (Outcome, error) {
	return c.publish(ctx, o)
}

func (c *Completer) publish(ctx context.Context, o Outcome) (Outcome, error) {
	if o.Published {
		return o, nil
	}
	if err := c.Pub.PublishEvent(ctx, o.Event); err != nil {
		return Outcome{}, fmt.Errorf("publish event %s: %w", o.Event.ID, err)
	}
	if err := c.Outcomes.MarkPublished(ctx, o); err != nil {
		return Outcome{}, fmt.Errorf("mark outcome %s published: %w", o.Key, err)
	}
	o.Published = true
	if c.Apply != nil {
		c.Apply(o.Event)
	}
	return o, nil
}
