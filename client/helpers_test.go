package client_test

import (
	"errors"
	"testing"

	"github.com/tat-worker/attest/client"
)

// eventsOf returns the events stored so far whose data names the command
// id (request_id or change_id).
func eventsOf(t testing.TB, c *client.Client, id string) []*client.Event {
	t.Helper()
	var out []*client.Event
	for ev, err := range c.Events(testCtx(t), client.EventFilter{StartSeq: 1, UntilCaughtUp: true}) {
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		if commandID(ev) == id {
			out = append(out, ev)
		}
	}
	return out
}

// commandID is the request_id or change_id an event's data names.
func commandID(ev *client.Event) string {
	switch d := ev.Data.(type) {
	case *client.SessionEventData:
		return d.RequestID
	case *client.AttestVerifiedData:
		return d.RequestID
	case *client.AttestFailedData:
		return d.RequestID
	case *client.ProfileResult:
		return d.ChangeID
	case *client.ProfileRejectedData:
		return d.ChangeID
	case *client.UserResult:
		return d.ChangeID
	case *client.UserRejectedData:
		return d.ChangeID
	}
	return ""
}

// refusal asserts that err is a refusal of type want (with its status).
func refusal(t testing.TB, err error, want *client.Error) *client.Error {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %s", err, want.Type)
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v is not a *client.Error", err)
	}
	if e.StatusCode != want.StatusCode {
		t.Errorf("status = %d, want %d", e.StatusCode, want.StatusCode)
	}
	if e.Message == "" {
		t.Errorf("no error_message in %v", e)
	}
	var te *client.TransportError
	if errors.As(err, &te) {
		t.Errorf("a refusal is also a TransportError: %v", err)
	}
	return e
}
