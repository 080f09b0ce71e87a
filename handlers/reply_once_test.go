package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tat-worker/attest/handlers"
)

// TestAttestReplyWithSecretsIsTheStoredReply: the reply a session attest
// sends, first and to a repeat while its token is valid, is its stored
// reply with the two bearer secrets added, byte for byte: the same members in the same order, and
// the session's custom claims as the request sent them (1.0 stays 1.0, a
// large integer keeps every digit), as in the event; and its session JWT
// says what a JWT minted from the view's session says.
func TestAttestReplyWithSecretsIsTheStoredReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", "active")
	start := e.startSession(t, "start", "ada@example.com")
	for _, tc := range []struct {
		name    string
		payload map[string]any
	}{
		{name: "new session", payload: map[string]any{"session_duration_minutes": 60,
			"session_custom_claims": json.RawMessage(`{"plan":"pro","n":1.0,"big":12345678901234567890,"esc":"<&>"}`)}},
		{name: "attach", payload: map[string]any{"session_token": start.SessionToken,
			"session_custom_claims": json.RawMessage(`{"n":2.50}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, _ := e.token(t, "ada@example.com", e.clock.Now())
			tc.payload["request_id"], tc.payload["token"], tc.payload["profile_id"] = "once-"+strings.ReplaceAll(tc.name, " ", "-"), tok, e.profile.ProfileID
			data, _ := json.Marshal(tc.payload)
			out, err := e.attest.Handle(context.Background(), handlers.Input{Data: data})
			if err != nil {
				t.Fatal(err)
			}
			var r handlers.AttestReply
			if err := json.Unmarshal(out.Reply, &r); err != nil || r.SessionToken == "" || r.SessionJWT == "" {
				t.Fatalf("reply without secrets (%v): %s", err, out.Reply)
			}
			secrets := `,"session_token":"` + r.SessionToken + `","session_jwt":"` + r.SessionJWT + `"`
			if !strings.Contains(string(out.Reply), secrets) {
				t.Fatalf("secrets not after the session: %s", out.Reply)
			}
			if got := strings.Replace(string(out.Reply), secrets, "", 1); got != string(out.Outcome.Reply) {
				t.Errorf("reply without its secrets differs from the stored reply:\n got  %s\n want %s", got, out.Outcome.Reply)
			}
			// A repeat while the token is valid gets the same reply, decoded
			// from the stored one.
			again, err := e.attest.Handle(context.Background(), handlers.Input{Data: data, Redelivered: true})
			if err != nil {
				t.Fatal(err)
			}
			var r2 handlers.AttestReply
			_ = json.Unmarshal(again.Reply, &r2)
			if got := strings.Replace(string(again.Reply), `,"session_token":"`+r2.SessionToken+`","session_jwt":"`+r2.SessionJWT+`"`, "", 1); r2.SessionJWT == "" || got != string(out.Outcome.Reply) {
				t.Errorf("the repeat's reply without its secrets differs from the stored reply:\n got  %s\n want %s", again.Reply, out.Outcome.Reply)
			}
			// The JWT minted from the session the delivery made (the first
			// reply) and from the view's (the repeat) says the same.
			if payload := func(jwt string) string { return strings.Split(jwt+"..", ".")[1] }; payload(r.SessionJWT) != payload(r2.SessionJWT) {
				t.Errorf("session JWT payloads differ:\n first  %s\n repeat %s", payload(r.SessionJWT), payload(r2.SessionJWT))
			}
			var ev struct {
				Session json.RawMessage `json:"session"`
			}
			var rep struct {
				Session json.RawMessage `json:"session"`
			}
			_ = json.Unmarshal(e.eventsFor(tc.payload["request_id"].(string))[0].Data, &ev)
			_ = json.Unmarshal(out.Reply, &rep)
			if string(ev.Session) != string(rep.Session) {
				t.Errorf("the reply's session differs from the event's:\n reply %s\n event %s", rep.Session, ev.Session)
			}
		})
	}
}
