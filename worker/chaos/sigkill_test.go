//go:build chaos

package chaos

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestChaosSIGKILL kills the only worker with SIGKILL three times while
// it works through the load, restarting it each time: whatever it held
// (claimed tokens, sessions without outcomes, outcomes without events,
// events without acks) is finished by the redelivery, once.
func TestChaosSIGKILL(t *testing.T) {
	_, _, h, w := oneWorker(t)

	l := h.plan("kill", 3000)
	pub := h.publish(l)
	n := len(l.reqs)
	for i, at := range []int{n / 5, n * 2 / 5, n * 3 / 5} {
		got := h.waitProgress(at, 3*time.Minute)
		w.kill()
		h.logf("SIGKILL %d at %d outcomes", i+1, got)
		w.start()
	}
	pub.wait(h)
	h.check(l, checkOpts{})
	// The kills landed on work in flight: some messages came again.
	if r := h.redeliveries(); r == 0 {
		t.Errorf("no redeliveries: the kills hit no work in flight")
	} else {
		h.logf("%d redeliveries", r)
	}
}

// TestChaosSIGTERMDrains stops the worker with SIGTERM in the middle of
// the load: it finishes what it holds and exits 0 within its drain
// timeout (TAT_SHUTDOWN_TIMEOUT=10s); a new process finishes the rest.
func TestChaosSIGTERMDrains(t *testing.T) {
	_, _, h, w := oneWorker(t)

	l := h.plan("term", 3000)
	pub := h.publish(l)
	at := h.waitProgress(len(l.reqs)/4, 3*time.Minute)
	took, err := w.term(20 * time.Second)
	if err != nil {
		t.Fatalf("SIGTERM at %d outcomes: %v (after %s); log:\n%s", at, err, took, tail(w.lastLog(), 40))
	}
	// The drain timeout is 10s; stopping the store client and the NATS
	// connection after it may take a moment more.
	if took > 15*time.Second {
		t.Errorf("exit took %s after SIGTERM, drain timeout is 10s", took)
	}
	after := h.progress()
	ci, _ := h.consumerInfo()
	pending := -1
	if ci != nil {
		pending = ci.NumAckPending
	}
	// A message whose handling failed transiently was handed back with
	// NakWithDelay (up to a minute): JetStream counts it as pending until
	// it is delivered again, though the worker holds it no more. Under
	// load the first handlers of a worker can meet such a failure (its
	// view not caught up within 5 s), so those are allowed for.
	b, _ := os.ReadFile(w.lastLog())
	naked := strings.Count(string(b), `"message":"transient failure; will retry"`)
	h.logf("SIGTERM at %d outcomes: exited 0 after %s; %d outcomes then, %d delivered and unacknowledged, %d handed back with a delay", at, took.Round(time.Millisecond), after, pending, naked)
	// Draining acknowledges everything the worker took and did not hand
	// back.
	if pending < 0 || pending > naked {
		t.Errorf("%d messages delivered to the drained worker are unacknowledged (%d handed back with a delay)", pending, naked)
	}
	w.start()
	pub.wait(h)
	h.check(l, checkOpts{})
}
