package worker

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
)

// eventPublisher publishes CloudEvents to the events stream with the event
// id as Nats-Msg-Id, so a retried publish of one outcome is stored once,
// and signed (SignatureHeader) over its subject and exact bytes.
type eventPublisher struct {
	js     jetstream.JetStream
	prefix string
	sig    signer
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
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return nil
}
