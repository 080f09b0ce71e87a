package worker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tat-worker/attest/handlers"
)

// kindHandler answers with its kind, and records the cause it abandoned with.
type kindHandler struct {
	kind  string
	cause error
}

func (h *kindHandler) Handle(context.Context, handlers.Input) (handlers.Output, error) {
	return handlers.Output{Reply: []byte(h.kind)}, nil
}

func (h *kindHandler) Abandon(_ context.Context, _ handlers.Input, cause error) (handlers.Output, error) {
	h.cause = cause
	return handlers.Output{Reply: []byte(h.kind)}, nil
}

// TestAdminRoutesByExactSubject: each admin subject reaches its kind's
// handler, to handle and to abandon; a subject that only ends like one
// reaches none.
func TestAdminRoutesByExactSubject(t *testing.T) {
	cfg := Defaults()
	cfg.SubjectPrefix = "acme.tat"
	profiles, users, keys := cfg.adminSubjects()
	hs := map[string]*kindHandler{profiles: {kind: "profiles"}, users: {kind: "users"}, keys: {kind: "keys"}}
	route := map[string]CommandHandler{}
	for s, h := range hs {
		route[s] = h
	}
	handle, abandon := runnerFuncs(bySubject(route))
	ctx := context.Background()
	for subject, h := range hs {
		out, err := handle(ctx, subject, handlers.Input{})
		if err != nil || string(out.Reply) != h.kind {
			t.Errorf("handle %s: %q, %v; want %s", subject, out.Reply, err, h.kind)
		}
		out, err = abandon(ctx, subject, handlers.Input{})
		if err != nil || string(out.Reply) != h.kind || !errors.Is(h.cause, errDeliveriesExhausted) {
			t.Errorf("abandon %s: %q, %v, cause %v; want %s given up with %v", subject, out.Reply, err, h.cause, h.kind, errDeliveriesExhausted)
		}
	}
	for _, subject := range []string{"other.users.commands", "acme.tat.x.keys.commands", "acme.tat.users.commands.x", ""} {
		if _, err := handle(ctx, subject, handlers.Input{}); err == nil {
			t.Errorf("handle %q: routed", subject)
		}
		if _, err := abandon(ctx, subject, handlers.Input{}); err == nil {
			t.Errorf("abandon %q: routed", subject)
		}
	}
}

func TestNewNamesMissingDeps(t *testing.T) {
	_, err := New(Defaults(), Deps{})
	if err == nil {
		t.Fatal("a worker without its deps")
	}
	for _, name := range []string{"NC", "Handlers", "Setup", "Snapshots", "Secrets", "Pinger", "Sweeper", "Batches", "master key"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
}

func TestHandlersCheck(t *testing.T) {
	h := &kindHandler{}
	if err := (Handlers{Attest: h, Profiles: h, Users: h, Keys: h}).check(); err == nil || !strings.Contains(err.Error(), "Sessions") {
		t.Errorf("check of handlers without sessions: %v", err)
	}
}
