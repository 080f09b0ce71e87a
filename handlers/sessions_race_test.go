package handlers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestRevisionRacesEndedSession: a change that loses its revision to a
// revocation whose event is not out yet does not write on the revoked
// session. Authenticate with a duration answers session_not_found (it used
// to extend the revoked session and mint a JWT for it); attaching a factor
// answers session_not_found too. Either way the revocation's event is
// published, once (attest used to apply the revocation to its view without
// it), and nothing more is written.
func TestRevisionRacesEndedSession(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"authenticate", "attach"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
			start := e.startSession(t, "start", "ada@example.com")
			sid := start.Session.SessionID
			st, _ := e.view.Session(sid)
			// Another worker's revocation: stored, its event not out, the
			// view does not hold it.
			revoked := st
			revoked.Revision, revoked.Revoked = 2, true
			if _, _, err := e.sessions.InsertRevision(context.Background(), revoked, "svc#other-worker"); err != nil {
				t.Fatal(err)
			}
			e.clock.Set(t0.Add(time.Minute))
			var status int
			var errType, jwt string
			switch via {
			case "authenticate":
				data, _ := json.Marshal(map[string]any{"session_token": start.SessionToken, "session_duration_minutes": 120})
				r := e.svc.Authenticate(context.Background(), data)
				status, errType, jwt = r.StatusCode, r.ErrorType, r.SessionJWT
			case "attach":
				tok, _ := e.token(t, "ada@example.com", e.clock.Now())
				r := e.attestReply(t, handlers.Input{}, map[string]any{"request_id": "attach", "token": tok, "session_token": start.SessionToken})
				status, errType, jwt = r.StatusCode, r.ErrorType, r.SessionJWT
			}
			if status != 404 || errType != domain.ErrSessionNotFound.Code || jwt != "" {
				t.Fatalf("%s on a session revoked meanwhile: %d %s (JWT %v)", via, status, errType, jwt != "")
			}
			if n := e.sessions.Revisions(sid); n != 2 {
				t.Errorf("%d revisions stored, want 2 (the start and the revocation)", n)
			}
			if n := len(e.pub.OfType(domain.EventSessionRevoked)); n != 1 {
				t.Errorf("%d session.revoked events, want 1", n)
			}
			if n := len(e.pub.OfType(domain.EventSessionUpdated)); n != 0 {
				t.Errorf("%d session.updated events", n)
			}
			if got, _ := e.view.Session(sid); got.Revision != 2 || !got.Revoked {
				t.Errorf("view holds %+v, want the revocation", got)
			}
		})
	}
}
