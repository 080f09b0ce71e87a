//go:build chaos

package chaos

import (
	"testing"
	"time"
)

// TestChaosSIGKILL kills the only worker with SIGKILL three times while
// it works through the load, restarting it each time: whatever it held
// (claimed tokens, sessions without outcomes, outcomes without events,
// events without acks) is finished by the redelivery, once.
func TestChaosSIGKILL(t *testing.T) {
	nats := startNATSNode(t)
	fe := startFerretNode(t)
	h := newHarness(t, nats.url(), fe.uri())
	w := h.newWorker("w1")
	w.start()
	h.setup()

	l := h.plan("kill", 2000)
	pub := h.publish(l)
	n := len(l.reqs)
	for i, at := range []int{n / 5, n * 2 / 5, n * 3 / 5} {
		got := h.waitProgress(at, 3*time.Minute)
		w.kill()
		t.Logf("SIGKILL %d at %d outcomes", i+1, got)
		w.start()
	}
	pub.wait(h)
	h.check(l, checkOpts{})
}
