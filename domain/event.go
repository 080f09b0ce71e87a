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

	// enc is the event's JSON as NewEvent encoded it (see Encode).
	enc *eventJSON
}

// eventJSON is an event's encoding and the fields it was made from.
type eventJSON struct {
	from Event // enc nil
	json []byte
}

// eventHeadRoom is the room NewEvent makes for the members before data:
// the constant ones take about 140 bytes, and ids and subjects are at most
// a few hundred (a longer or escaped one only makes append grow the
// buffer once).
const eventHeadRoom = 512

// plainEvent is Event without its methods: encoding/json's encoding of it.
type plainEvent Event

// NewEvent builds an event; data is marshalled to JSON. The event is
// encoded once, here (see Encode): its Data is part of its encoding.
func NewEvent(id, typ, subject string, at time.Time, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	e := Event{
		SpecVersion: EventSpecVersion, ID: id, Source: EventSource, Type: typ, Subject: subject,
		Time: at.UTC().Truncate(time.Second), DataContentType: EventDataContentType,
	}
	if y := e.Time.Year(); y < 0 || y > 9999 {
		// Beyond RFC 3339: encoding it fails, later, as json.Marshal does.
		e.Data = raw
		return e, nil
	}
	// The members in Event's order, as encoding/json writes them; data,
	// the last one, as json.Marshal wrote it (not scanned again).
	b := make([]byte, 0, len(raw)+eventHeadRoom)
	b = append(b, `{"specversion":`...)
	b = appendJSONString(b, e.SpecVersion)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, e.Source)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	if e.Subject != "" {
		b = append(b, `,"subject":`...)
		b = appendJSONString(b, e.Subject)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","datacontenttype":`...)
	b = appendJSONString(b, e.DataContentType)
	b = append(b, `,"data":`...)
	start := len(b)
	b = append(b, raw...)
	e.Data = json.RawMessage(b[start:len(b):len(b)])
	b = append(b, '}')
	e.enc = &eventJSON{from: e, json: b}
	return e, nil
}

// appendJSONString appends s as encoding/json encodes a string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // escaped as encoding/json does; a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Encode returns the event as JSON: the bytes json.Marshal gives. An event
// made by NewEvent carries them, so it is encoded once however many times
// it is stored and published, while its fields are those NewEvent gave it
// (a changed field makes Encode encode it afresh). The caller must not
// modify the bytes.
func (e Event) Encode() ([]byte, error) {
	if c := e.enc; c != nil && c.encodes(e) {
		return c.json, nil
	}
	return json.Marshal(plainEvent(e))
}

// MarshalJSON encodes the event (see Encode), so that json.Marshal of an
// event made by NewEvent reuses its encoding too.
func (e Event) MarshalJSON() ([]byte, error) { return e.Encode() }

// encodes reports whether c is the encoding of e: whether e has the fields
// c was made from (Data: the same bytes in memory).
func (c *eventJSON) encodes(e Event) bool {
	f := c.from
	return f.SpecVersion == e.SpecVersion && f.ID == e.ID && f.Source == e.Source && f.Type == e.Type &&
		f.Subject == e.Subject && f.Time == e.Time && f.DataContentType == e.DataContentType &&
		len(f.Data) == len(e.Data) && (len(f.Data) == 0 || &f.Data[0] == &e.Data[0])
}

// SubjectSuffix is the part of the NATS subject after "<prefix>.events.".
func (e Event) SubjectSuffix() string { return strings.TrimPrefix(e.Type, eventTypePrefix) }

// EventID is the id of the one outcome event of a command: fixed by the
// command's kind and id, so a redelivery publishes under the same
// Nats-Msg-Id and JetStream drops the copy.
func EventID(kind, commandID string) string {
	return "evt-" + DerivedUUID("event", kind, commandID)
}
