//go:build chaos

package chaos

import (
	"net/http"
	"testing"
	"time"
)

// TestChaosNATSRestart stops the NATS server in the middle of the load and
// starts it again on the same port and store directory. The worker stays
// up, /readyz answers 503 while NATS is gone and 200 once it is back, and
// the load finishes with one outcome per request.
func TestChaosNATSRestart(t *testing.T) {
	nats, _, h, w := oneWorker(t)

	l := h.plan("natsdown", 3000)
	pub := h.publish(l)
	n := len(l.reqs)
	for i, at := range []int{n / 4, n * 3 / 5} {
		got := h.waitProgress(at, 3*time.Minute)
		nats.stop()
		down := time.Now()
		took := w.waitReadyz(http.StatusServiceUnavailable, 10*time.Second)
		w.holdReadyz(http.StatusServiceUnavailable, 2*time.Second)
		nats.start()
		restarted := time.Now()
		back := w.waitReadyz(http.StatusOK, time.Minute)
		h.logf("NATS restart %d at %d outcomes: /readyz 503 after %s, NATS down %s, /readyz 200 %s after the restart",
			i+1, got, took.Round(time.Millisecond), restarted.Sub(down).Round(time.Millisecond), back.Round(time.Millisecond))
	}
	pub.wait(h)
	h.check(l, checkOpts{})
}

// TestChaosStoreOutage kills the store (FerretDB) in the middle of the load
// for a few seconds and starts it again on the same address and directory.
// The worker stays up, /readyz answers 503 while the store is gone and 200
// after. A request may end in internal_server_error only when it exhausted
// its deliveries (and then it has a dead letter); none may be lost or doubled.
func TestChaosStoreOutage(t *testing.T) {
	_, fe, h, w := oneWorker(t)

	l := h.plan("storedown", 3000)
	pub := h.publish(l)
	got := h.waitProgress(len(l.reqs)/4, 3*time.Minute)
	fe.kill()
	down := time.Now()
	took := w.waitReadyz(http.StatusServiceUnavailable, 15*time.Second)
	w.holdReadyz(http.StatusServiceUnavailable, 3*time.Second)
	fe.start()
	restarted := time.Now()
	back := w.waitReadyz(http.StatusOK, time.Minute)
	h.logf("store killed at %d outcomes: /readyz 503 after %s, store down %s, /readyz 200 %s after the restart",
		got, took.Round(time.Millisecond), restarted.Sub(down).Round(time.Millisecond), back.Round(time.Millisecond))
	pub.wait(h)
	sum := h.check(l, checkOpts{allowInternal: true})
	if len(sum.internal) > 0 {
		h.logf("%d requests exhausted their deliveries during the outage: %v", len(sum.internal), firstN(sum.internal, 20))
	}
}
