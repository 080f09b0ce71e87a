//go:build chaos

package chaos

import (
	"os"
	"time"
)

// watchProgress logs the load's progress and the attest consumer's state
// every two seconds when CHAOS_PROGRESS is set: for finding out where a
// slow or stuck test spends its time.
func (h *harness) watchProgress() {
	if os.Getenv("CHAOS_PROGRESS") == "" {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	h.t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
			ci, _ := h.consumerInfo()
			if ci != nil {
				leader := ""
				if ci.Cluster != nil {
					leader = ci.Cluster.Leader
				}
				h.logf("progress %d; consumer: ack pending %d, pending %d, redelivered %d, waiting pulls %d, leader %q",
					h.progress(), ci.NumAckPending, ci.NumPending, ci.NumRedelivered, ci.NumWaiting, leader)
			} else {
				h.logf("progress %d", h.progress())
			}
		}
	}()
}
