//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestChaosFleet runs three workers on one NATS server and one store and
// kills one with SIGKILL in the middle of the load: the other two share
// the consumer, take over what it held once the ack wait ends, and no
// request gets two outcomes or two sessions.
func TestChaosFleet(t *testing.T) {
	nats := startNATSNode(t)
	fe := startFerretProc(t)
	h := newHarness(t, nats.url(), fe.uri())
	var ws []*workerProc
	for i := range 3 {
		w := h.newWorker(fmt.Sprintf("w%d", i+1))
		w.start()
		ws = append(ws, w)
	}
	h.setup()

	l := h.plan("fleet", 3000)
	pub := h.publish(l)
	got := h.waitProgress(len(l.reqs)/3, 3*time.Minute)
	ws[1].kill()
	h.logf("SIGKILL w2 at %d outcomes", got)
	pub.wait(h)
	h.check(l, checkOpts{})
	// Every surviving worker did part of the work.
	for _, w := range []*workerProc{ws[0], ws[2]} {
		n, err := w.metric("tat_outcomes_total")
		if err != nil {
			t.Errorf("metrics of %s: %v", w.name, err)
			continue
		}
		h.logf("%s: %v outcomes", w.name, n)
		if n == 0 {
			t.Errorf("worker %s took no work", w.name)
		}
	}
	if r := h.redeliveries(); r == 0 {
		t.Errorf("no redeliveries: the kill hit no work in flight")
	}
}

// TestChaosCluster runs the workers on a three-node NATS cluster with
// every stream and consumer replicated three times, and kills the node
// leading the attest stream with SIGKILL in the middle of the load.
func TestChaosCluster(t *testing.T) {
	c := startNATSCluster(t, 3)
	fe := startFerretProc(t)
	h := newHarness(t, c.urls(), fe.uri())
	waitJetStream(t, h)
	h.logf("cluster's JetStream ready")
	var ws []*workerProc
	for i := range 2 {
		w := h.newWorker(fmt.Sprintf("w%d", i+1), "TAT_STREAM_REPLICAS=3")
		w.start()
		ws = append(ws, w)
	}
	h.setup()
	info := h.streamInfo(attestStream)
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("attest stream not replicated three times: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}

	l := h.plan("cluster", 2000)
	pub := h.publish(l)
	got := h.waitProgress(len(l.reqs)/3, 3*time.Minute)
	leader := h.streamInfo(attestStream).Cluster.Leader
	victim := c.node(leader)
	if victim == nil {
		t.Fatalf("attest stream leader %q is not a node of the cluster", leader)
	}
	victim.kill()
	h.logf("SIGKILL nats node %s (attest stream leader) at %d outcomes", leader, got)
	pub.wait(h)
	h.check(l, checkOpts{})
	if after := h.streamInfo(attestStream).Cluster.Leader; after == leader {
		t.Errorf("the killed node %s still leads the attest stream", leader)
	}
}

// waitJetStream waits until the cluster's JetStream answers account
// requests (a meta leader is elected).
func waitJetStream(t *testing.T, h *harness) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := h.js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream of the cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
