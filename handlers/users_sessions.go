package handlers

import (
	"context"
	"fmt"
)

// endSessions finishes a user command: once its outcome is
// stored and published, the sessions of a user it deleted or made inactive
// are revoked, one revision and one session.revoked event each (see
// Sessions.EndSessionsAfter). It runs for a stored outcome too (a
// redelivery, a repeated change_id), so a crash or a fault between the
// outcome and the last revocation is finished by the next delivery; a
// failure is transient, and the command is delivered again.
func (h *UserChange) endSessions(ctx context.Context, out Output, err error) (Output, error) {
	if err != nil || h.Sessions == nil {
		return out, err
	}
	if err := h.Sessions.EndSessionsAfter(ctx, out.Outcome.Event); err != nil {
		return Output{}, fmt.Errorf("end the sessions of user %s: %w", out.Outcome.Event.Subject, err)
	}
	return out, nil
}
