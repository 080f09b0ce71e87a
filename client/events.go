package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Event types (contract section 8). An event's NATS subject is
// <prefix>.events. plus the type without "tat.".
const (
	EventSessionCreated    = "tat.session.created"
	EventSessionUpdated    = "tat.session.updated"
	EventSessionRevoked    = "tat.session.revoked"
	EventAttestVerified    = "tat.attest.verified"
	EventAttestFailed      = "tat.attest.failed"
	EventProfileCreated    = "tat.profile.created"
	EventProfileUpdated    = "tat.profile.updated"
	EventProfileDeleted    = "tat.profile.deleted"
	EventProfileRejected   = "tat.profile.rejected"
	EventUserCreated       = "tat.user.created"
	EventUserUpdated       = "tat.user.updated"
	EventUserDeleted       = "tat.user.deleted"
	EventUserRejected      = "tat.user.rejected"
	EventJWKSRefreshed     = "tat.jwks.refreshed"
	EventJWKSRefreshFailed = "tat.jwks.refresh_failed"
)

// Event is one record of the audit log: a CloudEvents 1.0 envelope, its
// position in the events stream, and its data decoded by type.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	RawData         json.RawMessage `json:"data"`

	// Sequence is the event's sequence in the events stream: give it back
	// as EventFilter.StartSeq (plus one) to resume after it.
	Sequence uint64 `json:"-"`
	// Data is RawData decoded by Type:
	//
	//	session.created, session.updated         *SessionEventData
	//	session.revoked                          *SessionRevokedData
	//	attest.verified                          *AttestVerifiedData
	//	attest.failed                            *AttestFailedData
	//	profile.created, .updated, .deleted      *ProfileResult
	//	profile.rejected                         *ProfileRejectedData
	//	user.created, .updated, .deleted         *UserResult (a JIT user.created has no change_id and status_code)
	//	user.rejected                            *UserRejectedData
	//	jwks.refreshed                           *JWKSRefreshedData
	//	jwks.refresh_failed                      *JWKSRefreshFailedData
	//
	// and nil for a type this client does not know (read RawData).
	Data any `json:"-"`
}

// SessionEventData is the data of session.created and session.updated.
// From an attest it names the request, profile and token; from
// sessions.authenticate with a duration only request_id (svc:...),
// user_id, session and session_revision.
type SessionEventData struct {
	RequestID       string  `json:"request_id"`
	ProfileID       string  `json:"profile_id,omitempty"`
	UserID          string  `json:"user_id"`
	TokenID         string  `json:"token_id,omitempty"`
	TokenSHA256     string  `json:"token_sha256,omitempty"`
	Session         Session `json:"session"`
	SessionRevision int64   `json:"session_revision"`
}

// SessionRevokedData is the data of session.revoked.
type SessionRevokedData struct {
	SessionID       string  `json:"session_id"`
	UserID          string  `json:"user_id"`
	Session         Session `json:"session"`
	SessionRevision int64   `json:"session_revision"`
}

// AttestVerifiedData is the data of attest.verified: a token accepted
// without a session asked for.
type AttestVerifiedData struct {
	RequestID   string `json:"request_id"`
	ProfileID   string `json:"profile_id"`
	UserID      string `json:"user_id"`
	TokenID     string `json:"token_id"`
	TokenSHA256 string `json:"token_sha256"`
}

// AttestFailedData is the data of attest.failed.
type AttestFailedData struct {
	RequestID    string `json:"request_id"`
	ProfileID    string `json:"profile_id,omitempty"` // as the request sent it
	TokenSHA256  string `json:"token_sha256,omitempty"`
	StatusCode   int    `json:"status_code"`
	ErrorType    string `json:"error_type"`
	ErrorMessage string `json:"error_message"`
}

// Err returns the refusal as an *Error (errors.Is works on it).
func (d *AttestFailedData) Err() *Error {
	return &Error{StatusCode: d.StatusCode, Type: d.ErrorType, Message: d.ErrorMessage, ID: d.RequestID}
}

// ProfileRejectedData is the data of profile.rejected.
type ProfileRejectedData struct {
	ChangeID     string `json:"change_id"`
	ProfileID    string `json:"profile_id,omitempty"`
	StatusCode   int    `json:"status_code"`
	ErrorType    string `json:"error_type"`
	ErrorMessage string `json:"error_message"`
}

// Err returns the refusal as an *Error.
func (d *ProfileRejectedData) Err() *Error {
	return &Error{StatusCode: d.StatusCode, Type: d.ErrorType, Message: d.ErrorMessage, ID: d.ChangeID}
}

// UserRejectedData is the data of user.rejected.
type UserRejectedData struct {
	ChangeID     string `json:"change_id"`
	UserID       string `json:"user_id,omitempty"`
	StatusCode   int    `json:"status_code"`
	ErrorType    string `json:"error_type"`
	ErrorMessage string `json:"error_message"`
}

// Err returns the refusal as an *Error.
func (d *UserRejectedData) Err() *Error {
	return &Error{StatusCode: d.StatusCode, Type: d.ErrorType, Message: d.ErrorMessage, ID: d.ChangeID}
}

// JWKSRefreshedData is the data of jwks.refreshed.
type JWKSRefreshedData struct {
	ProfileID   string   `json:"profile_id"`
	JWKSURL     string   `json:"jwks_url"`
	AddedKIDs   []string `json:"added_kids,omitempty"`
	RemovedKIDs []string `json:"removed_kids,omitempty"`
}

// JWKSRefreshFailedData is the data of jwks.refresh_failed.
type JWKSRefreshFailedData struct {
	ProfileID    string `json:"profile_id"`
	JWKSURL      string `json:"jwks_url"`
	ErrorMessage string `json:"error_message"`
}

// decodeData decodes RawData into Data by Type.
func (e *Event) decodeData() error {
	var v any
	switch e.Type {
	case EventSessionCreated, EventSessionUpdated:
		v = new(SessionEventData)
	case EventSessionRevoked:
		v = new(SessionRevokedData)
	case EventAttestVerified:
		v = new(AttestVerifiedData)
	case EventAttestFailed:
		v = new(AttestFailedData)
	case EventProfileCreated, EventProfileUpdated, EventProfileDeleted:
		v = new(ProfileResult)
	case EventProfileRejected:
		v = new(ProfileRejectedData)
	case EventUserCreated, EventUserUpdated, EventUserDeleted:
		v = new(UserResult)
	case EventUserRejected:
		v = new(UserRejectedData)
	case EventJWKSRefreshed:
		v = new(JWKSRefreshedData)
	case EventJWKSRefreshFailed:
		v = new(JWKSRefreshFailedData)
	default:
		return nil
	}
	if err := json.Unmarshal(e.RawData, v); err != nil {
		return fmt.Errorf("event %s (%s): data: %w", e.ID, e.Type, err)
	}
	e.Data = v
	return nil
}

// ProfileID returns the profile the event is about or names: the profile
// of a profile.* or jwks.* event, the profile_id of an attest or
// attest-made session event ("" for other events).
func (e *Event) ProfileID() string {
	switch d := e.Data.(type) {
	case *SessionEventData:
		return d.ProfileID
	case *AttestVerifiedData:
		return d.ProfileID
	case *AttestFailedData:
		return d.ProfileID
	case *ProfileResult:
		return d.Profile.ProfileID
	case *ProfileRejectedData:
		return d.ProfileID
	case *JWKSRefreshedData:
		return d.ProfileID
	case *JWKSRefreshFailedData:
		return d.ProfileID
	}
	return ""
}

// UserID returns the user the event is about or names: the user of a
// user.* event, the user_id of a session or attest event ("" for other
// events, and for attest.failed).
func (e *Event) UserID() string {
	switch d := e.Data.(type) {
	case *SessionEventData:
		return d.UserID
	case *SessionRevokedData:
		return d.UserID
	case *AttestVerifiedData:
		return d.UserID
	case *UserResult:
		return d.User.UserID
	case *UserRejectedData:
		return d.UserID
	}
	return ""
}

// EventFilter chooses which events Events yields and from where.
type EventFilter struct {
	// Types keeps events of these types (EventSessionCreated, ...), or of
	// type patterns with NATS wildcards ("tat.session.>", "tat.*.rejected");
	// the stream filters them on the server. Empty: every type.
	Types []string
	// ProfileID keeps events whose ProfileID() is this (client side).
	ProfileID string
	// UserID keeps events whose UserID() is this (client side).
	UserID string

	// StartSeq delivers from this stream sequence (1: from the first
	// event), StartTime from the first event stored at or after it; at
	// most one of them. Neither: only events published from now on.
	StartSeq  uint64
	StartTime time.Time

	// UntilCaughtUp ends the iteration once the events stored when it
	// started have been read (an audit or a replay), instead of following
	// new events until the context ends.
	UntilCaughtUp bool
}

// typePattern is an event type after "tat.", with NATS wildcards: tokens
// of A-Za-z0-9_- or *, the last one possibly >.
var typePattern = regexp.MustCompile(`^(([A-Za-z0-9_-]+|\*)\.)*([A-Za-z0-9_-]+|\*|>)$`)

// eventSubject is the NATS subject of an event type under the prefix.
func (c *Client) eventSubject(typ string) (string, error) {
	rest, ok := strings.CutPrefix(typ, "tat.")
	if !ok || !typePattern.MatchString(rest) {
		return "", fmt.Errorf("tat: event type %q: want tat.<kind>.<what> (NATS wildcards allowed: tat.session.>), e.g. %s", typ, EventSessionCreated)
	}
	return c.subject("events", rest), nil
}

// Events reads the events stream (<PREFIX>_EVENTS) with an ordered
// consumer (ephemeral, flow-controlled, recreated after a disconnect, so
// no event is skipped or repeated) and yields the events that pass f, in
// stream order, until ctx ends (the iteration then simply stops), the
// caller breaks, or with f.UntilCaughtUp once it is caught up.
//
// A failure to start (no stream, bad filter) or of the consumer is yielded
// as the last (nil, err). An event whose data does not decode is yielded
// with its envelope and a non-nil error, and the iteration goes on if the
// caller continues.
//
//	for ev, err := range c.Events(ctx, client.EventFilter{StartSeq: 1, UntilCaughtUp: true}) {
//		if err != nil { ... }
//		fmt.Println(ev.Sequence, ev.Type)
//	}
func (c *Client) Events(ctx context.Context, f EventFilter) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		if err := c.events(ctx, f, yield); err != nil && ctx.Err() == nil {
			yield(nil, err)
		}
	}
}

func (c *Client) events(ctx context.Context, f EventFilter, yield func(*Event, error) bool) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	for _, t := range f.Types {
		s, err := c.eventSubject(t)
		if err != nil {
			return err
		}
		cfg.FilterSubjects = append(cfg.FilterSubjects, s)
	}
	switch {
	case f.StartSeq > 0 && !f.StartTime.IsZero():
		return errors.New("tat: EventFilter: give StartSeq or StartTime, not both")
	case f.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.StartSeq
	case !f.StartTime.IsZero():
		t := f.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	stream := c.streamName("EVENTS")
	setup, cancel := c.bound(ctx)
	defer cancel()
	cons, err := c.js.OrderedConsumer(setup, stream, cfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return &TransportError{Op: "events", Subject: c.subject("events", ">"), Err: ErrNoStream, Cause: err}
		}
		return fmt.Errorf("tat: consumer on %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tat: consume %s: %w", stream, err)
	}
	defer it.Stop()
	if f.UntilCaughtUp {
		// Nothing pending and nothing delivered: nothing matched when the
		// consumer was made, so no message will say we are caught up.
		info, err := cons.Info(setup)
		if err != nil {
			return fmt.Errorf("tat: consumer info on %s: %w", stream, err)
		}
		if info.NumPending == 0 && info.Delivered.Consumer == 0 {
			return nil
		}
	}
	cancel()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tat: read %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("tat: read %s: %w", stream, err)
		}
		ev := &Event{}
		derr := json.Unmarshal(m.Data(), ev)
		ev.Sequence = md.Sequence.Stream
		if derr == nil {
			derr = ev.decodeData()
		} else {
			derr = fmt.Errorf("tat: event at %s seq %d is not a CloudEvent: %w", stream, ev.Sequence, derr)
		}
		switch {
		case derr != nil:
			if !yield(ev, derr) {
				return nil
			}
		case f.match(ev):
			if !yield(ev, nil) {
				return nil
			}
		}
		if f.UntilCaughtUp && md.NumPending == 0 {
			return nil
		}
	}
}

// match applies the client-side filters.
func (f EventFilter) match(e *Event) bool {
	if f.ProfileID != "" && e.ProfileID() != f.ProfileID {
		return false
	}
	if f.UserID != "" && e.UserID() != f.UserID {
		return false
	}
	return true
}
