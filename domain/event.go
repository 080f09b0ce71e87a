package domain

import (
	"encoding/json"
	"strings"
	"time"
)

// Event types. The NATS subject is <prefix>.events. plus the type without
// its "tat." prefix (contract section 7).
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
	EventSource            = "tat/worker"
	EventSpecVersion       = "1.0"
	EventDataContentType   = "application/json"
	eventTypePrefix        = "tat."
)

// Event is a CloudEvents 1.0 event in structured JSON mode.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// NewEvent builds an event; data is marshalled to JSON.
func NewEvent(id, typ, subject string, at time.Time, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{
		SpecVersion: EventSpecVersion, ID: id, Source: EventSource, Type: typ, Subject: subject,
		Time: at.UTC().Truncate(time.Second), DataContentType: EventDataContentType, Data: raw,
	}, nil
}

// SubjectSuffix is the part of the NATS subject after "<prefix>.events.".
func (e Event) SubjectSuffix() string { return strings.TrimPrefix(e.Type, eventTypePrefix) }

// EventID is the id of the one outcome event of a command: fixed by the
// command's kind and id, so a redelivery publishes under the same
// Nats-Msg-Id and JetStream drops the copy.
func EventID(kind, commandID string) string {
	return "evt-" + DerivedUUID("event", kind, commandID)
}
