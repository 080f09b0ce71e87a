package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/worker/natsconn"
)

// replyHeader names the subject a command's outcome is sent to; the
// worker's worker.ReplyHeader (contract section 1).
const replyHeader = "Tat-Reply-To"

// connect dials NATS within the timeout, with the TAT_NATS_* settings
// (credentials, TLS, inbox prefix) attestd reads, and the URL of -nats.
func (c *cli) connect() (*nats.Conn, error) {
	s, err := natsconn.Load(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("NATS settings:\n%w", err)
	}
	s.URL = c.g.natsURL
	// Asynchronous errors (a refused publish) are reported with the
	// command's own error (refused), not printed apart.
	nc, err := s.Dial(nats.Name("attestctl"), nats.Timeout(c.g.timeout), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", natsconn.Redact(c.g.natsURL), err)
	}
	return nc, nil
}

// refused adds to err the server's refusal of this identity, when the
// connection met one (a permissions violation arrives on its own, and the
// request it spoiled only times out).
func refused(nc *nats.Conn, err error) error {
	le := nc.LastError()
	if le == nil || !errors.Is(le, nats.ErrPermissionViolation) {
		return err
	}
	hint := `see README "Deploying safely" for who may do what`
	if strings.Contains(le.Error(), "Subscription to") {
		hint = "is TAT_NATS_INBOX_PREFIX this identity's inbox prefix? " + hint
	}
	return fmt.Errorf("%w; the server refused this identity: %v (%s)", err, le, hint)
}

// jetStream is the JetStream API as this identity reaches it: through
// TAT_NATS_JS_API_PREFIX when set (an auditor's account imports the
// worker account's API under $JS.TAT.API), else the account's own.
func (c *cli) jetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	if p := os.Getenv("TAT_NATS_JS_API_PREFIX"); p != "" {
		return jetstream.NewWithAPIPrefix(nc, p)
	}
	return jetstream.New(nc)
}

// publishAndWait publishes a command to its JetStream subject with
// Nats-Msg-Id id and a Tat-Reply-To inbox, waits for the stream's ack and
// then for the one reply, and prints the reply. The inbox is subscribed
// (and the subscription flushed to the server) before the publish, so a
// fast worker's reply cannot be missed.
func (c *cli) publishAndWait(subject, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.g.timeout)
	defer cancel()
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()

	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("subscribe to the reply inbox: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("flush the inbox subscription: %w", err)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(replyHeader, inbox)
	ack, err := js.PublishMsg(ctx, msg)
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no stream takes %s: is attestd running against this server, with -prefix %s?", subject, c.g.prefix)
	case err != nil:
		return refused(nc, fmt.Errorf("publish to %s: %w", subject, err))
	case ack.Duplicate:
		return fmt.Errorf("stream %s already holds a message with Nats-Msg-Id %s (seq %d), so it dropped this copy and no reply will come; use a new id to send a new command",
			ack.Stream, id, ack.Sequence)
	}

	reply, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		if le := nc.LastError(); le != nil && errors.Is(le, nats.ErrPermissionViolation) {
			return refused(nc, fmt.Errorf("no reply; %s is stored in %s as seq %d", id, ack.Stream, ack.Sequence))
		}
		if c.ctx.Err() != nil {
			return fmt.Errorf("interrupted; %s is stored in %s as seq %d and will still be applied", id, ack.Stream, ack.Sequence)
		}
		return fmt.Errorf("no reply within %s; %s is stored in %s as seq %d and will still be applied (watch it with 'attestctl events')",
			c.g.timeout, id, ack.Stream, ack.Sequence)
	}
	return printReply(c.stdout, reply.Data)
}

// printReply prints a JSON reply indented and returns a *replyError when
// its status_code is 400 or more. A reply that is not a JSON object is
// printed as it came and is a failure.
func printReply(w io.Writer, data []byte) error {
	var status struct {
		StatusCode int    `json:"status_code"`
		ErrorType  string `json:"error_type"`
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil || json.Unmarshal(data, &status) != nil {
		_, _ = w.Write(append(bytes.TrimRight(data, "\n"), '\n'))
		return errors.New("the reply is not a JSON object")
	}
	buf.WriteByte('\n')
	if _, err := buf.WriteTo(w); err != nil {
		return err
	}
	if status.StatusCode >= 400 {
		return &replyError{status: status.StatusCode, errorType: status.ErrorType}
	}
	return nil
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
