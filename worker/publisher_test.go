package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker/embedded"
)

// publisherFixture is a NATS server with an events stream under "tp", and
// a publisher on a fresh connection.
func publisherFixture(t *testing.T) (*eventPublisher, jetstream.Stream, *nats.Conn) {
	t.Helper()
	ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TP_EVENTS", Subjects: []string{"tp.events.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return &eventPublisher{js: js, prefix: "tp", sig: newSigner(make([]byte, 32), eventSigningLabel)}, st, nc
}

func testEvent(t *testing.T, id string) domain.Event {
	t.Helper()
	e, err := domain.NewEvent(id, domain.EventAttestVerified, "s", time.Now(), map[string]string{"request_id": id})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func streamMsgs(t *testing.T, st jetstream.Stream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Concurrent callers share the asynchronous publishes; each returns once
// the stream stored its own event, and a repeat of an event id (the
// duplicate window drops it) is a success that stores nothing.
func TestPublisherAsyncEachCallerGetsItsAck(t *testing.T) {
	p, st, _ := publisherFixture(t)
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.PublishEvent(ctx, testEvent(t, fmt.Sprint("evt-", i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("publish: %v", err)
	}
	if got := streamMsgs(t, st); got != n {
		t.Fatalf("stream holds %d events, want %d", got, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.PublishEvent(ctx, testEvent(t, "evt-7")); err != nil {
		t.Fatalf("a repeated event id: %v, want nil (a duplicate is stored once)", err)
	}
	if got := streamMsgs(t, st); got != n {
		t.Fatalf("after a repeat the stream holds %d events, want %d", got, n)
	}
	msg, err := st.GetLastMsgForSubject(ctx, "tp.events.attest.verified")
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) == "" || msg.Header.Get(SignatureHeader) == "" {
		t.Fatalf("stored event lacks Nats-Msg-Id or signature: %v", msg.Header)
	}
	if left := p.async.PublishAsyncPending(); left != 0 {
		t.Fatalf("%d publishes still pending after every caller returned", left)
	}
}

// A publish no stream takes fails with its own error; one whose context
// has ended does not wait.
func TestPublisherAsyncErrors(t *testing.T) {
	p, _, _ := publisherFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nostream := &eventPublisher{js: p.js, prefix: "elsewhere", sig: p.sig}
	err := nostream.PublishEvent(ctx, testEvent(t, "evt-x"))
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish to no stream: %v, want ErrNoStreamResponse", err)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if err := p.PublishEvent(done, testEvent(t, "evt-y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with an ended context: %v, want context.Canceled", err)
	}
}

// Closing the connection ends what the asynchronous publisher started
// (its reply subscription's and reconnect watcher's goroutines).
func TestPublisherAsyncNoGoroutineLeft(t *testing.T) {
	p, _, nc := publisherFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.PublishEvent(ctx, testEvent(t, "evt-g")); err != nil {
		t.Fatal(err)
	}
	if !goroutinesIn("jetstream.(*jetStream).resetPendingAcksOnReconnect") {
		t.Fatal("no reconnect watcher while connected: the test looks for the wrong function")
	}
	nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if !goroutinesIn("jetstream.(*jetStream).resetPendingAcksOnReconnect") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the async publisher's reconnect watcher outlived the connection")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goroutinesIn reports whether a goroutine's stack names fn.
func goroutinesIn(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Contains(string(buf), fn)
}
