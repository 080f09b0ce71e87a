package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
)

const (
	// publishMaxPending bounds the event publishes awaiting the stream's
	// ack (jetstream.WithPublishAsyncMaxPending). Each caller waits for
	// its own ack, so the publishes outstanding are about the messages in
	// flight (at most TAT_WORKER_CONCURRENCY, 1,024, plus the admin runner
	// and the JWKS and key events), and those whose caller gave up, until
	// their ack or publishAckTimeout. A publish past the bound waits for a
	// free place as long as its caller's deadline allows.
	publishMaxPending = 4096
	// publishAckTimeout drops an ack that has not come (a stream leader
	// that died with the publish): the future fails with
	// ErrAsyncPublishTimeout and leaves the pending set. Callers give up
	// sooner, at their context's deadline; the handler's NakWithDelay then
	// publishes again under the same Nats-Msg-Id.
	publishAckTimeout = 10 * time.Second
	// publishStallWait is how long a publish waits for a free place under
	// publishMaxPending when its context has no deadline.
	publishStallWait = 5 * time.Second
)

// eventPublisher publishes CloudEvents to the events stream with the event
// id as Nats-Msg-Id, so a retried publish of one outcome is stored once,
// and signed (SignatureHeader) over its subject and exact bytes.
//
// Publishes are asynchronous (PublishMsgAsync): the publish is written to
// the connection's buffer, and the client's flusher writes all publishes
// buffered meanwhile in one write, so the events of every attest in flight
// share the writes and travel together; their acks come back on one
// subscription. Each caller then waits for the ack of its own event only,
// so PublishEvent still returns once the stream has stored that event (a
// duplicate Nats-Msg-Id is an ack too), with that event's error.
type eventPublisher struct {
	js     jetstream.JetStream
	prefix string
	sig    signer

	// async is a JetStream context on js's connection with the limits of
	// asynchronous publishing set (made on first use).
	asyncOnce sync.Once
	async     jetstream.JetStream
	asyncErr  error
}

func (p *eventPublisher) asyncJS() (jetstream.JetStream, error) {
	p.asyncOnce.Do(func() {
		p.async, p.asyncErr = jetstream.New(p.js.Conn(),
			jetstream.WithPublishAsyncMaxPending(publishMaxPending),
			jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	})
	return p.async, p.asyncErr
}

// PublishEvent returns once the stream has stored the event (or had it).
func (p *eventPublisher) PublishEvent(ctx context.Context, e domain.Event) error {
	body, err := e.Encode() // encoded once, by domain.NewEvent
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: p.prefix + ".events." + e.SubjectSuffix(), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, e.ID)
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	msg.Header.Set(SignatureHeader, p.sig.sign([]byte(msg.Subject), body))
	if err := p.publish(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return nil
}

// publish sends msg asynchronously and waits for its ack, its error, or
// the end of ctx, whichever comes first.
func (p *eventPublisher) publish(ctx context.Context, msg *nats.Msg) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	js, err := p.asyncJS()
	if err != nil {
		return err
	}
	stall := publishStallWait
	if d, ok := ctx.Deadline(); ok {
		if stall = time.Until(d); stall <= 0 {
			return context.DeadlineExceeded
		}
	}
	f, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(stall))
	if err != nil {
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		// The future stays with the client until its ack comes or
		// publishAckTimeout drops it; the stream may still store the
		// event, and a retry under the same Nats-Msg-Id is then a
		// duplicate.
		return ctx.Err()
	}
}
