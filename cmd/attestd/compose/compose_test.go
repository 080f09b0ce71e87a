package compose_test

import (
	"testing"
	"time"

	"github.com/tat-worker/attest/cmd/attestd/compose"
	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
)

// attestd's store is the one store of the composition.
var _ compose.Store = (*mongostore.Store)(nil)

// TestHandlersAreAllBuilt: the builder gives the worker every handler, and
// the reads handler the reply limit of the parts.
func TestHandlersAreAllBuilt(t *testing.T) {
	build := compose.Handlers((*mongostore.Store)(nil))
	h, err := build(worker.Parts{
		Config: worker.Defaults(), Now: time.Now, View: handlers.NewView(func(string) string { return "" }),
		Apply: func(domain.Event) {}, MaxReadReplyBytes: 1234,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"Attest": h.Attest, "Profiles": h.Profiles, "Users": h.Users, "Keys": h.Keys, "Sessions": h.Sessions, "Reads": h.Reads,
	} {
		if v == nil {
			t.Errorf("no %s handler", name)
		}
	}
	if r, ok := h.Reads.(*handlers.Reads); !ok || r.MaxReplyBytes != 1234 {
		t.Errorf("reads handler %#v does not bound its replies by the parts' limit", h.Reads)
	}
	if u, ok := h.Users.(*handlers.UserChange); !ok || u.Sessions != h.Sessions {
		t.Error("the users handler does not end sessions through the sessions handler")
	}
}

func TestNewRefusesNoStore(t *testing.T) {
	if _, err := compose.New(worker.Defaults(), nil, worker.Deps{}); err == nil {
		t.Fatal("compose.New made a worker without a store")
	}
	if _, err := compose.Handlers(nil)(worker.Parts{}); err == nil {
		t.Fatal("compose.Handlers built handlers without a store")
	}
}
