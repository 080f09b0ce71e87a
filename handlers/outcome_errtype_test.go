package handlers_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestAttestOutcomeKeepsErrorType: the outcome a refusal makes carries its
// error_type as a field (the one the reply names), both as returned and as
// stored; a success's is empty.
func TestAttestOutcomeKeepsErrorType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	handle := func(id, email string) handlers.Output {
		t.Helper()
		tok, _ := e.token(t, email, e.clock.Now())
		data, _ := json.Marshal(map[string]any{"request_id": id, "profile_id": e.profile.ProfileID, "token": tok})
		out, err := e.attest.Handle(context.Background(), handlers.Input{Data: data})
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		return out
	}

	out := handle("refused", "nobody@example.com")
	var r handlers.AttestReply
	if err := json.Unmarshal(out.Reply, &r); err != nil || r.ErrorType != domain.ErrUserNotFound.Code {
		t.Fatalf("reply %s (%v), want %s", out.Reply, err, domain.ErrUserNotFound.Code)
	}
	if out.Outcome.ErrorType != domain.ErrUserNotFound.Code {
		t.Errorf("returned outcome's ErrorType %q, want %q", out.Outcome.ErrorType, domain.ErrUserNotFound.Code)
	}
	stored, ok, _ := e.outcomes.Get(context.Background(), "attest:refused")
	if !ok || stored.ErrorType != domain.ErrUserNotFound.Code {
		t.Errorf("stored outcome's ErrorType %q (found %v), want %q", stored.ErrorType, ok, domain.ErrUserNotFound.Code)
	}

	out = handle("ok", "ada@example.com")
	if out.Outcome.StatusCode != 200 || out.Outcome.ErrorType != "" {
		t.Errorf("success outcome: status %d, ErrorType %q, want 200 and none", out.Outcome.StatusCode, out.Outcome.ErrorType)
	}
}

// TestAdminOutcomeKeepsErrorType: an admin command's outcome (here a keys
// command) carries the error_type of its refusal as a field, as returned
// and as stored; an accepted one has none.
func TestAdminOutcomeKeepsErrorType(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	handle := func(seq uint64, payload string) handlers.Output {
		t.Helper()
		out, err := k.h.Handle(context.Background(), handlers.Input{Data: []byte(payload), Stream: "TAT_ADMIN", StreamSeq: seq, PublishedAt: k.clock.Now()})
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		return out
	}
	out := handle(1, `{"change_id":"bad-1","op":"delete"}`)
	if out.Outcome.StatusCode != 400 || out.Outcome.ErrorType != domain.ErrInvalidRequest.Code {
		t.Errorf("refused keys command's outcome: status %d, ErrorType %q", out.Outcome.StatusCode, out.Outcome.ErrorType)
	}
	if stored, ok, _ := k.outcomes.Get(context.Background(), "keys:bad-1"); !ok || stored.ErrorType != domain.ErrInvalidRequest.Code {
		t.Errorf("stored outcome's ErrorType %q (found %v)", stored.ErrorType, ok)
	}
	if out := handle(2, `{"change_id":"rot-1","op":"rotate"}`); out.Outcome.StatusCode != 200 || out.Outcome.ErrorType != "" {
		t.Errorf("accepted keys command's outcome: status %d, ErrorType %q", out.Outcome.StatusCode, out.Outcome.ErrorType)
	}
}
