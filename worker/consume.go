package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/handlers"
)

// ReplyHeader names the subject a command's outcome is sent to.
const ReplyHeader = "Tat-Reply-To"

// errDeliveriesExhausted is the cause of a delivery past MaxDeliver.
var errDeliveriesExhausted = errors.New("deliveries exhausted")

// errEventAsCommand is the dead letter's reason for an event delivered
// into a command stream.
var errEventAsCommand = errors.New("an event (it carries " + SignatureHeader + ") delivered into a command stream: dropped without an outcome")

type handleFunc func(ctx context.Context, subject string, in handlers.Input) (handlers.Output, error)

// runner consumes one durable consumer with a bounded number of messages
// in flight. Each message ends in exactly one of: Ack after its outcome is
// stored, its event published and its reply sent; NakWithDelay after a
// transient fault (exponential backoff); or, once it has been delivered
// MaxDeliver times, a dead letter, an abandoned outcome, and Ack.
//
// The Ack is not confirmed (Ack, not DoubleAck): it is sent only once the
// outcome is stored and its event is in the stream, so an ack that is lost
// (the connection drops, the worker dies before it is written) only makes
// a redelivery after the ack wait, which finds the stored outcome and its
// publication marker, replies the same and publishes nothing. While
// draining, acks are confirmed, so that a worker that exits after SIGTERM
// leaves nothing unacknowledged behind it.
type runner struct {
	kind        string
	cons        jetstream.Consumer
	handle      handleFunc
	abandon     handleFunc
	nc          *nats.Conn
	js          jetstream.JetStream
	cfg         Config
	log         zerolog.Logger
	m           *metrics
	concurrency int

	sem      chan struct{}
	wg       sync.WaitGroup
	cc       jetstream.ConsumeContext
	sampled  zerolog.Logger // for what a publisher may repeat at will
	draining atomic.Bool    // acks are confirmed (DoubleAck) once set
}

// pullBatch is how many messages the consumer asks the server for ahead of
// the free slots (jetstream.PullMaxMessages; it asks again for the
// difference once half have been handed to a slot): a cushion, so that a
// slot that frees finds its next message in the client even when the pull
// round trip is late (a loaded machine). Measured on the embedded stack at
// 32 slots, a cushion of 8 left slots idle: 4.9 documents per grouped
// insert and 5-15 % more CPU per attest than a cushion of 32 (6.1-6.7
// documents); at 128 slots a cushion of 32 did as well as 128. So the
// cushion is 32 (the slots, when fewer), not the slots: a message waiting
// in the client for a slot is not kept alive (keepAlive starts when the
// callback takes it), so fewer of them outlive the short ack wait when
// every handler stalls, and each worker holds fewer unacknowledged
// messages against the consumer's MaxAckPending (the fleet's: at 128 slots
// 160 per worker).
func pullBatch(slots int) int {
	return min(slots, 32)
}

func (r *runner) start(work context.Context) error {
	r.sem = make(chan struct{}, r.concurrency)
	r.sampled = r.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second})
	cc, err := r.cons.Consume(func(m jetstream.Msg) {
		// Kept alive from the moment it arrives: a message waiting here for
		// a free slot must not be redelivered to another worker meanwhile.
		stop := keepAlive(m, r.cfg.AckWait/3)
		r.sem <- struct{}{} // backpressure: the callback waits for a free slot
		r.wg.Add(1)
		go func() {
			defer func() { <-r.sem; r.wg.Done() }()
			r.process(work, m, stop)
		}()
	}, jetstream.PullMaxMessages(pullBatch(r.concurrency)),
		// Short pull requests: after a cluster node dies, a pull parked on
		// it expires in seconds instead of the default 30.
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Debug().Err(err).Str("consumer", r.kind).Msg("consume")
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", r.kind, err)
	}
	r.cc = cc
	return nil
}

// drain stops taking messages and waits for those in flight, up to the
// deadline of ctx.
func (r *runner) drain(ctx context.Context) error {
	if r.cc == nil {
		return nil
	}
	r.draining.Store(true)
	r.cc.Drain()
	done := make(chan struct{})
	go func() {
		select {
		case <-r.cc.Closed():
		case <-ctx.Done():
		}
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain %s: %w", r.kind, ctx.Err())
	}
}

func (r *runner) process(ctx context.Context, m jetstream.Msg, stop func()) {
	start := time.Now()
	md, err := m.Metadata()
	if err != nil {
		stop()
		_ = m.Term()
		return
	}
	hdr := m.Headers()
	if hdr.Get(SignatureHeader) != "" {
		// An event, not a command: a consumer of the events stream whose
		// deliver subject is a command subject. Deciding it would publish
		// an outcome event, delivered back here in turn: a loop. It is
		// dropped with no outcome (an audit check shows its sequence as
		// lost), and a dead letter records where and why.
		stop()
		r.m.eventsRefused.WithLabelValues("delivered_as_command").Inc()
		r.sampled.Warn().Str("kind", r.kind).Uint64("stream_seq", md.Sequence.Stream).
			Msg("an event arrived as a command (a consumer of the events stream delivers into a command subject); dropped")
		dctx, cancel := context.WithTimeout(ctx, r.cfg.AckWait)
		r.deadLetter(dctx, m, md, errEventAsCommand)
		cancel()
		_ = m.Term()
		return
	}
	replyTo := hdr.Get(ReplyHeader)
	refusal := ""
	if replyTo != "" {
		refusal = r.cfg.replyRefusal(m.Subject(), replyTo)
	}
	in := handlers.Input{
		Data:         m.Data(),
		HeaderID:     hdr.Get(jetstream.MsgIDHeader),
		StreamSeq:    md.Sequence.Stream,
		Stream:       md.Stream,
		Redelivered:  md.NumDelivered > 1,
		PublishedAt:  md.Timestamp,
		ReplyRefused: refusal != "",
	}
	var out handlers.Output
	if int(md.NumDelivered) > r.cfg.MaxDeliver {
		// Dead-lettered on an earlier delivery, whose abandoning did not
		// finish: the command ends abandoned (or with the outcome already
		// stored), never with a later success behind its dead letter.
		err = errDeliveriesExhausted
	} else {
		// A handler stuck on a dead server must give the message back: the
		// keep-alive would otherwise hold it forever.
		hctx, cancel := context.WithTimeout(ctx, r.cfg.handlerTimeout())
		out, err = safely(hctx, r.handle, m.Subject(), in)
		cancel()
	}
	final := err != nil && int(md.NumDelivered) >= r.cfg.MaxDeliver
	if final {
		// A deadline of their own: the handler's may be spent.
		fctx, cancel := context.WithTimeout(ctx, r.cfg.handlerTimeout())
		r.deadLetter(fctx, m, md, err)
		out, err = safely(fctx, r.abandon, m.Subject(), in)
		cancel()
	}
	stop()
	log := r.log.With().Str("kind", r.kind).Uint64("stream_seq", md.Sequence.Stream).Uint64("deliveries", md.NumDelivered).Logger()
	var pe *panicError
	if errors.As(err, &pe) {
		log.Error().Str("panic", pe.value).Bytes("stack", pe.stack).Msg("handler panicked")
	}
	if err != nil {
		delay := retryDelay(r.cfg, int(md.NumDelivered))
		log.Warn().Err(err).Dur("retry_in", delay).Msg("transient failure; will retry")
		r.m.retries.WithLabelValues(r.kind).Inc()
		_ = m.NakWithDelay(delay)
		return
	}
	r.reply(replyTo, refusal, out.Reply, log)
	if err := r.ack(ctx, m); err != nil {
		// The outcome is stored and published: a redelivery answers the
		// same and publishes nothing new.
		log.Warn().Err(err).Msg("ack failed; a redelivery will repeat the stored outcome")
	}
	o := out.Outcome
	errType := o.ErrorType
	r.m.outcomes.WithLabelValues(r.kind, o.Event.Type, errType).Inc()
	r.m.latency.WithLabelValues(r.kind).Observe(time.Since(start).Seconds())
	ev := log.Info()
	if o.StatusCode >= 500 {
		ev = log.Error()
	}
	ev.Str("key", o.Key).Int("status_code", o.StatusCode).Str("event", o.Event.Type).
		Str("event_id", o.Event.ID).Str("error_type", errType).Dur("took", time.Since(start)).Msg("outcome")
}

// ack acknowledges a message whose outcome is stored and published: one
// publish, not confirmed, except while draining (see runner).
func (r *runner) ack(ctx context.Context, m jetstream.Msg) error {
	if r.draining.Load() {
		actx, cancel := context.WithTimeout(ctx, r.cfg.AckWait)
		defer cancel()
		return m.DoubleAck(actx)
	}
	return m.Ack()
}

// reply sends the outcome to the requester's subject unless replyRefusal
// refused it: a reply may carry bearer secrets.
func (r *runner) reply(to, refusal string, body []byte, log zerolog.Logger) {
	if to == "" {
		return
	}
	if refusal != "" {
		log.Warn().Str("reason", refusal).Msg("Tat-Reply-To refused: the reply is not sent")
		r.m.replyRefused.Inc()
		return
	}
	if err := r.nc.Publish(to, body); err != nil {
		log.Warn().Err(err).Msg("reply not sent")
	}
}

// deadLetter records a message that exhausted its deliveries: where it
// was and why, never its payload (which may hold a token).
func (r *runner) deadLetter(ctx context.Context, m jetstream.Msg, md *jetstream.MsgMetadata, cause error) {
	body, _ := json.Marshal(map[string]any{
		"stream": md.Stream, "stream_seq": md.Sequence.Stream, "subject": m.Subject(),
		"msg_id": m.Headers().Get(jetstream.MsgIDHeader), "deliveries": md.NumDelivered,
		"reason": truncate(cause.Error(), 2000), "time": time.Now().UTC().Format(time.RFC3339),
	})
	msg := &nats.Msg{Subject: r.cfg.subject("deadletter", r.kind), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dl-%s-%d", md.Stream, md.Sequence.Stream))
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		r.log.Error().Err(err).Uint64("stream_seq", md.Sequence.Stream).Msg("dead letter not published")
	}
	r.m.deadLetters.WithLabelValues(r.kind).Inc()
}

// safely runs h, turning a panic into a transient error so the worker
// keeps going and the message is retried, then dead-lettered.
func safely(ctx context.Context, h handleFunc, subject string, in handlers.Input) (out handlers.Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: fmt.Sprintf("%T", p), stack: debug.Stack()}
		}
	}()
	return h(ctx, subject, in)
}

// panicError is a recovered panic. Its message names only the panic's
// type: the value may hold request data, and the message reaches dead
// letters. The stack is logged where the panic is handled.
type panicError struct {
	value string
	stack []byte
}

func (e *panicError) Error() string { return "panic (" + e.value + ")" }

// keepAlive tells the server the message is being worked on, so a slow
// handler (a JWKS fetch) is not redelivered to another worker meanwhile.
func keepAlive(m jetstream.Msg, every time.Duration) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// retryDelay is the exponential backoff for the n-th delivery.
func retryDelay(c Config, deliveries int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier = c.RetryBase, c.RetryMax, 2
	b.MaxElapsedTime = 0
	b.Reset()
	d := b.NextBackOff()
	for i := 1; i < deliveries; i++ {
		d = b.NextBackOff()
	}
	return d
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
