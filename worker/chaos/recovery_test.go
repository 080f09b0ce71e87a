//go:build chaos

package chaos

import (
	"testing"
	"time"

	"github.com/tat-worker/attest/worker"
)

// TestChaosSIGKILLRecovery runs two workers with the default ack wait
// (TAT_ACK_WAIT unset, unlike the other chaos tests) and kills one with
// SIGKILL while both work through a backlog: the other finishes every
// message the killed one held, each with exactly one outcome, once the ack
// wait of the killed worker's messages runs out (they are kept alive with
// InProgress only while a live worker handles them).
//
// It logs the recovery time: from the kill to the last outcome of a request
// that had been delivered, and not finished, before the kill (the killed
// worker's in flight and prefetched messages, and the survivor's own). It
// asserts no time: speed is the benchmarks' business, and this machine is
// shared; it asserts that the kill hit work in flight, that the consumer
// runs with the default ack wait, and the one verdict of every chaos test.
func TestChaosSIGKILLRecovery(t *testing.T) {
	nats := startNATSNode(t)
	fe := startFerretProc(t)
	h := newHarness(t, nats.url(), fe.uri())
	victim := h.newWorker("victim")
	survivor := h.newWorker("survivor")
	for _, w := range []*workerProc{victim, survivor} {
		w.unset("TAT_ACK_WAIT")
		w.start()
	}
	h.setup()
	ci, err := h.consumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if want := worker.Defaults().AckWait; ci.Config.AckWait != want {
		t.Fatalf("attest consumer's ack wait is %s, want the default %s", ci.Config.AckWait, want)
	}

	l := h.plan("recover", 2000)
	pub := h.publish(l)
	got := h.waitProgress(len(l.reqs)/4, 3*time.Minute)
	victim.kill()
	killedAt := time.Now()
	// Every request delivered so far has a sequence up to this one; those
	// without an outcome yet were in flight (or prefetched) in one of the
	// two workers.
	ci, err = h.consumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	deliveredUpTo := ci.Delivered.Stream
	h.logf("SIGKILL victim at %d outcomes; delivered up to attest seq %d, %d delivered and unacknowledged (both workers)",
		got, deliveredUpTo, ci.NumAckPending)

	pub.wait(h)
	h.check(l, checkOpts{})

	// Recovery: the outcomes, stored after the kill, of the requests
	// delivered before it.
	var last time.Time
	held := 0
	for _, e := range h.readEvents() {
		if !attestEventTypes[e.ev.Type] || e.data.StreamSeq == 0 || e.data.StreamSeq > deliveredUpTo || !e.stored.After(killedAt) {
			continue
		}
		held++
		if e.stored.After(last) {
			last = e.stored
		}
	}
	r := h.redeliveries()
	if held == 0 || r == 0 {
		t.Fatalf("the kill hit no work in flight: %d requests delivered before it finished after it, %d redeliveries", held, r)
	}
	h.logf("recovery: %d requests delivered before the SIGKILL finished after it, the last %s after the kill (ack wait %s); %d redeliveries",
		held, last.Sub(killedAt).Round(time.Millisecond), ci.Config.AckWait, r)
}
