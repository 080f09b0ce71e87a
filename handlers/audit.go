package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Position is where a command sits in its JetStream stream. Every outcome
// event of a command names it, and so does the light event of a repeat
// (RepeatedEventData), so that each sequence of TAT_ATTEST and TAT_ADMIN
// maps to exactly one event: that is what attestctl audit check verifies.
type Position struct {
	// Stream is the command's stream, e.g. TAT_ATTEST.
	Stream string `json:"stream,omitempty"`
	// StreamSeq is the command's sequence in Stream.
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	// RequestedAt is when Stream stored the command: it places the
	// sequence in time for an audit over a time window.
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// known reports whether the position names a sequence. Handlers run
// without one (tests) publish no repeated events.
func (p Position) known() bool { return p.StreamSeq != 0 }

// same reports whether p and q name the same message.
func (p Position) same(q Position) bool { return p.StreamSeq == q.StreamSeq && p.Stream == q.Stream }

type positionKey struct{}

// withPosition carries in's position to the events the handler makes.
func withPosition(ctx context.Context, in Input) context.Context {
	return context.WithValue(ctx, positionKey{}, Position{Stream: in.Stream, StreamSeq: in.StreamSeq, RequestedAt: in.PublishedAt.UTC()})
}

// positionOf returns the position of the command being handled (zero when
// none was given).
func positionOf(ctx context.Context) Position {
	p, _ := ctx.Value(positionKey{}).(Position)
	return p
}

// eventPosition reads the position an outcome's event names (zero for an
// outcome stored before events carried one).
func eventPosition(e domain.Event) Position {
	var p Position
	_ = json.Unmarshal(e.Data, &p)
	return p
}

// RepeatedEventData is the data of tat.attest.repeated,
// tat.profile.repeated and tat.user.repeated: a message answered from the
// outcome another message with the same command id made. It names the
// repeat's own position and the first outcome's event, and holds no secret
// and no session.
type RepeatedEventData struct {
	RequestID string `json:"request_id,omitempty"` // attest
	ChangeID  string `json:"change_id,omitempty"`  // profile and user commands
	Position
	// FirstEventID is the id of the first outcome's event.
	FirstEventID string `json:"first_event_id"`
	// FirstStreamSeq is the sequence that made the first outcome (absent
	// when that outcome predates positions).
	FirstStreamSeq uint64 `json:"first_stream_seq,omitempty"`
	// StatusCode is what this message was answered: the first outcome's
	// status, or 400 for a different request reusing the id.
	StatusCode int    `json:"status_code"`
	ErrorType  string `json:"error_type,omitempty"`
	// DifferentRequest is set when the message asked something else than
	// the first one under the same id (another token, profile, session
	// argument, duration or claims): it was refused with invalid_request
	// and never saw the first outcome.
	DifferentRequest bool `json:"different_request,omitempty"`
	// ReplyRefused: this message named a reply subject the worker does not
	// reply to; it was answered nowhere.
	ReplyRefused bool `json:"reply_refused,omitempty"`
}

// repeatKinds maps an outcome's kind to its repeated event type.
var repeatKinds = map[string]string{
	"attest":  domain.EventAttestRepeated,
	"profile": domain.EventProfileRepeated,
	"user":    domain.EventUserRepeated,
	"keys":    domain.EventKeysRepeated,
}

// Repeated announces that the message being handled (its position is in
// ctx) was answered from first, an outcome another message made: one
// tat.<kind>.repeated event, made once per message. Its id is derived from
// the message's position and it is stored like an outcome (under
// "<kind>.repeated:<stream>#<seq>:<id>") before it is published, so a
// redelivery of the repeat publishes nothing new, even past the events
// stream's duplicate window. Nothing happens when the position is unknown
// or is first's own (a redelivery of the message that made it).
func (c *Completer) Repeated(ctx context.Context, first Outcome, now time.Time, status int, errType string, different bool) error {
	pos := positionOf(ctx)
	if !pos.known() {
		return nil
	}
	fp := eventPosition(first.Event)
	if pos.same(fp) {
		return nil
	}
	kind, id, _ := strings.Cut(first.Key, ":")
	typ, ok := repeatKinds[kind]
	if !ok {
		return fmt.Errorf("no repeated event for outcome %s", first.Key)
	}
	data := RepeatedEventData{Position: pos, FirstEventID: first.Event.ID, FirstStreamSeq: fp.StreamSeq,
		StatusCode: status, ErrorType: errType, DifferentRequest: different, ReplyRefused: replyRefused(ctx)}
	if kind == "attest" {
		data.RequestID = id
	} else {
		data.ChangeID = id
	}
	at := fmt.Sprintf("%s#%d:%s", pos.Stream, pos.StreamSeq, id)
	ev, err := domain.NewEvent(domain.EventID(kind+".repeated", at), typ, "", now, data)
	if err != nil {
		return err
	}
	_, _, err = c.Complete(ctx, Outcome{Key: kind + ".repeated:" + at, StatusCode: status, ErrorType: errType, Event: ev, CreatedAt: now})
	return err
}
