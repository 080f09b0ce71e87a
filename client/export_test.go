package client

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishFunc is the JetStream publish a Client uses for commands.
type PublishFunc = func(context.Context, *nats.Msg) (*jetstream.PubAck, error)

// WrapPublish replaces c's JetStream publish with wrap(the current one),
// so tests can lose a publish or its ack.
func WrapPublish(c *Client, wrap func(next PublishFunc) PublishFunc) {
	c.publish = wrap(c.publish)
}
