package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplyHeader is the header naming the subject a command's outcome is sent
// to (contract section 3). The client sets it to a fresh inbox per call.
const ReplyHeader = "Tat-Reply-To"

// Defaults of the options.
const (
	DefaultPrefix             = "tat"
	DefaultTimeout            = 10 * time.Second
	DefaultAckWait            = 2 * time.Second
	DefaultCommandDedupWindow = time.Second
)

// Client publishes commands to the worker and calls its services over one
// NATS connection. It is safe for concurrent use; it owns nothing (Close
// the connection yourself).
type Client struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	prefix  string
	app     string
	inbox   string // the WithInboxPrefix prefix; "" uses nc.NewInbox()
	jsAPI   string // the WithJetStreamAPIPrefix prefix; "" is the account's own $JS.API
	timeout time.Duration
	ackWait time.Duration
	dedup   time.Duration

	// publish is js.PublishMsg; tests wrap it to lose acks.
	publish func(context.Context, *nats.Msg) (*jetstream.PubAck, error)
}

// Option configures a Client.
type Option func(*Client)

// WithPrefix sets the subject prefix of the worker (TAT_SUBJECT_PREFIX;
// default "tat"): tokens of A-Za-z0-9_- joined by dots.
func WithPrefix(prefix string) Option { return func(c *Client) { c.prefix = prefix } }

// WithApp publishes attest requests on <prefix>.attest.requests.<app>
// instead of <prefix>.attest.requests, so NATS permissions can give each
// application its own subject. app is one or more tokens of A-Za-z0-9_-
// joined by dots.
func WithApp(app string) Option { return func(c *Client) { c.app = app } }

// WithInboxPrefix makes the client's reply inboxes <prefix>.<128 random
// bits>, for the worker's replies to commands and for service requests. By
// default the client uses nc.NewInbox(), which honours the connection's
// nats.CustomInboxPrefix. JetStream's own replies (PubAcks, the events
// consumer's deliveries) always use the connection's prefix, so in a
// locked-down deployment, where an application may subscribe to
// _INBOX_<app>.> only, set nats.CustomInboxPrefix("_INBOX_<app>") on the
// connection; this option then only adds unguessable names. The prefix
// must not be under the worker's subject prefix nor start with "$": the
// worker never replies there (New refuses it). The workers reply only
// under their TAT_REPLY_PREFIXES (default _INBOX.), and to an application's
// attest requests only under its TAT_APP_REPLY_PREFIXES entry: a prefix of
// your own must be listed there.
func WithInboxPrefix(prefix string) Option {
	return func(c *Client) { c.inbox = strings.TrimSuffix(prefix, ".") }
}

// WithJetStreamAPIPrefix reaches JetStream through an API prefix other
// than the account's own $JS.API: an account that imports the worker
// account's JetStream API under, say, $JS.TAT.API (an auditor reading
// the events stream) gives that prefix. It applies to Events, whose
// ordered consumer is made through the API; command publishes need none.
func WithJetStreamAPIPrefix(prefix string) Option {
	return func(c *Client) { c.jsAPI = strings.TrimSuffix(prefix, ".") }
}

// WithTimeout bounds a call whose context has no deadline (default 10 s; 0
// or less: no bound). A call that runs out of it fails with ErrTimeout.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithAckWait bounds the wait for one JetStream PubAck (default 2 s); when
// it passes, the client publishes the command again with the same
// Nats-Msg-Id, until an ack comes or the call's context ends.
func WithAckWait(d time.Duration) Option { return func(c *Client) { c.ackWait = d } }

// WithCommandDedupWindow tells the client the command streams' duplicate
// window (TAT_COMMAND_DEDUP_WINDOW, default 1 s). When a PubAck says the
// stream dropped a command as a duplicate and no reply has come after about
// 1.5 windows, the client publishes it again with the same id: past the
// window the copy reaches the worker, which answers with the id's one
// outcome.
func WithCommandDedupWindow(d time.Duration) Option { return func(c *Client) { c.dedup = d } }

var (
	tokensPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// New returns a client on nc. It checks the options, and that the worker
// would reply to this client's inboxes (not under the prefix, not "$").
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, errors.New("tat: New needs a NATS connection")
	}
	c := &Client{nc: nc, prefix: DefaultPrefix, timeout: DefaultTimeout, ackWait: DefaultAckWait, dedup: DefaultCommandDedupWindow}
	for _, o := range opts {
		o(c)
	}
	if !tokensPattern.MatchString(c.prefix) {
		return nil, fmt.Errorf("tat: prefix %q: want tokens of A-Za-z0-9_- joined by dots", c.prefix)
	}
	if c.app != "" && !tokensPattern.MatchString(c.app) {
		return nil, fmt.Errorf("tat: app %q: want tokens of A-Za-z0-9_- joined by dots", c.app)
	}
	if c.inbox != "" && (strings.ContainsAny(c.inbox, " \t\r\n*>") || strings.Contains(c.inbox, "..") || strings.HasPrefix(c.inbox, ".")) {
		return nil, fmt.Errorf("tat: inbox prefix %q is not a subject prefix", c.inbox)
	}
	if in := c.newInbox(); !replyAllowed(in, c.prefix) {
		return nil, fmt.Errorf("tat: inboxes like %q would get no reply: the worker replies only to subjects outside %q that do not start with $", in, c.prefix+".>")
	}
	if c.ackWait <= 0 {
		c.ackWait = DefaultAckWait
	}
	if c.dedup <= 0 {
		c.dedup = DefaultCommandDedupWindow
	}
	js, err := jetstream.New(nc)
	if c.jsAPI != "" {
		js, err = jetstream.NewWithAPIPrefix(nc, c.jsAPI)
	}
	if err != nil {
		return nil, fmt.Errorf("tat: jetstream: %w", err)
	}
	c.js = js
	c.publish = func(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) { return js.PublishMsg(ctx, m) }
	return c, nil
}

// replyAllowed is the worker's rule for reply subjects (contract D4).
func replyAllowed(s, prefix string) bool {
	if s == "" || len(s) > 256 || strings.ContainsAny(s, " \t\r\n*>") || strings.HasPrefix(s, "$") {
		return false
	}
	if s == prefix || strings.HasPrefix(s, prefix+".") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

// NewID returns a random command id of the contract's alphabet (32 hex
// digits, 128 bits). Set it as AttestRequest.RequestID (or a command's
// ChangeID) and keep it when you must be able to ask again for the outcome
// after a transport failure; the client makes one when you give none.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// newInbox returns a fresh reply subject: nc.NewInbox(), or the
// WithInboxPrefix prefix and 128 random bits.
func (c *Client) newInbox() string {
	if c.inbox == "" {
		return c.nc.NewInbox()
	}
	return c.inbox + "." + NewID()
}

// subject joins parts under the prefix.
func (c *Client) subject(parts ...string) string {
	return c.prefix + "." + strings.Join(parts, ".")
}

// streamName is the name of one of the worker's streams: the prefix upper
// cased with . and - as _, then _<kind>.
func (c *Client) streamName(kind string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(c.prefix)) + "_" + kind
}

// bound applies the default timeout to a context without a deadline; its
// cause is then ErrTimeout.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
}

// ctxError is why ctx ended: ErrTimeout when the client's default timeout
// did, else the caller's ctx.Err().
func ctxError(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), ErrTimeout) {
		return ErrTimeout
	}
	return ctx.Err()
}

// fail fills te with why the call failed: the context's end when it has
// ended, else err.
func fail(ctx context.Context, te *TransportError, err error) *TransportError {
	switch {
	case ctx.Err() != nil:
		te.Err = ctxError(ctx)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			te.Cause = err
		}
	case errors.Is(err, nats.ErrNoResponders):
		te.Err = ErrNoResponders
	default:
		te.Err = err
	}
	return te
}

// command publishes a command with JetStream and returns the raw reply
// whose idField (request_id or change_id) is id.
//
//   - The reply inbox is subscribed and flushed before the publish, so a
//     fast worker's reply cannot be missed.
//   - The command carries Nats-Msg-Id: id and Tat-Reply-To: the inbox.
//   - A PubAck that does not come within the ack wait (lost publish or
//     lost ack) is retried with the same id: JetStream drops a copy within
//     its duplicate window, and the worker answers any later copy with the
//     id's one outcome. Either way the reply arrives on this call's inbox.
//   - When a PubAck says "duplicate" (the stored copy may be another
//     publisher's, whose reply went elsewhere) and no reply comes within
//     1.5 duplicate windows, the command is published again: past the
//     window the copy reaches the worker, which replies here.
//   - The first reply with the right id is returned; later copies (a
//     redelivery answers again) and replies naming another id are dropped.
func (c *Client) command(ctx context.Context, op, subject, idField, id string, body []byte) ([]byte, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	te := &TransportError{Op: op, Subject: subject, ID: id}
	inbox := c.newInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fail(ctx, te, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return nil, fail(ctx, te, err)
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(ReplyHeader, inbox)

	duplicate, err := c.publishUntilAcked(ctx, msg, te)
	if err != nil {
		return nil, err
	}
	wait := c.dedup + c.dedup/2
	for {
		wctx, wcancel := ctx, context.CancelFunc(func() {})
		if duplicate {
			wctx, wcancel = context.WithTimeout(ctx, wait)
		}
		m, err := sub.NextMsgWithContext(wctx)
		silent := duplicate && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded)
		wcancel()
		switch {
		case err == nil:
		case silent:
			// Only a duplicate was acked and nothing came: publish again,
			// past the window.
			wait *= 2
			if duplicate, err = c.publishUntilAcked(ctx, msg, te); err != nil {
				return nil, err
			}
			continue
		case errors.Is(err, nats.ErrNoResponders) && ctx.Err() == nil:
			// A "no responders" status on the inbox: the worker never
			// sends one (the stream took the command); ignore it.
			continue
		default:
			return nil, fail(ctx, te, err)
		}
		if replyID(m.Data, idField) != id {
			continue // not this command's reply: ignore it
		}
		return m.Data, nil
	}
}

// publishUntilAcked publishes msg until a PubAck comes, republishing (same
// Nats-Msg-Id) after each ack wait, and records where the stream holds it.
func (c *Client) publishUntilAcked(ctx context.Context, msg *nats.Msg, te *TransportError) (duplicate bool, err error) {
	pause := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, c.ackWait)
		ack, err := c.publish(actx, msg)
		cancel()
		if err == nil {
			te.Stored, te.Stream, te.Sequence = true, ack.Stream, ack.Sequence
			return ack.Duplicate, nil
		}
		if ctx.Err() != nil {
			return false, fail(ctx, te, err)
		}
		switch {
		case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
			te.Err, te.Cause = ErrNoStream, err
			return false, te
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrReconnectBufExceeded):
			// Lost on the way there or back: the same id again.
		default:
			return false, fail(ctx, te, err)
		}
		select {
		case <-ctx.Done():
			return false, fail(ctx, te, err)
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// replyID reads the id member of a reply ("" when it has none).
func replyID(data []byte, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	var id string
	_ = json.Unmarshal(m[field], &id)
	return id
}

// request sends a core-NATS request to subject and returns the raw reply.
// It uses its own inbox (see newInbox) rather than the connection's
// shared response subscription, so WithInboxPrefix applies to it too.
func (c *Client) request(ctx context.Context, op, subject string, body []byte) ([]byte, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	te := &TransportError{Op: op, Subject: subject}
	inbox := c.newInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fail(ctx, te, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.PublishRequest(subject, inbox, body); err != nil {
		return nil, fail(ctx, te, err)
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, fail(ctx, te, err)
	}
	return m.Data, nil
}

// status is what every reply carries.
type status struct {
	StatusCode   int    `json:"status_code"`
	ErrorType    string `json:"error_type"`
	ErrorMessage string `json:"error_message"`
}

// decode turns a reply into v, or into an *Error when it is a refusal.
func decode(op, subject string, data []byte, idField string, v any) error {
	var st status
	if err := json.Unmarshal(data, &st); err != nil {
		return &TransportError{Op: op, Subject: subject, Err: ErrMalformedReply, Cause: err}
	}
	if st.StatusCode >= 400 || st.ErrorType != "" {
		e := &Error{StatusCode: st.StatusCode, Type: st.ErrorType, Message: st.ErrorMessage}
		if idField != "" {
			e.ID = replyID(data, idField)
		}
		return e
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &TransportError{Op: op, Subject: subject, Err: ErrMalformedReply, Cause: err}
	}
	return nil
}

// call is request + decode for the services (sessions, reads): op is the
// subject under the prefix, e.g. "sessions.revoke".
func call[T any](ctx context.Context, c *Client, op string, req any) (*T, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	subject := c.subject(op)
	data, err := c.request(ctx, op, subject, body)
	if err != nil {
		return nil, err
	}
	var r T
	if err := decode(op, subject, data, "", &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// checkID validates a command id before it goes into a header and a payload.
func checkID(field, id string) error {
	if !idPattern.MatchString(id) {
		return localError(ErrInvalidRequest, field+" must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	return nil
}
