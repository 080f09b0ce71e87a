package domain_test

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tat-worker/attest/domain"
)

// eventFields mirrors domain.Event member by member: encoding/json's
// encoding of an event's fields, whatever Event's own methods do.
type eventFields struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

func fieldsJSON(t *testing.T, e domain.Event) string {
	t.Helper()
	b, err := json.Marshal(eventFields{e.SpecVersion, e.ID, e.Source, e.Type, e.Subject, e.Time, e.DataContentType, e.Data})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEventEncodedOnce: an event from NewEvent carries its encoding, and
// Encode and json.Marshal give exactly what encoding its fields gives; so
// does an event whose fields changed since (encoded afresh) and one not
// made by NewEvent.
func TestEventEncodedOnce(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 500, time.FixedZone("X", 3600))
	data := map[string]any{"request_id": "r-1", "html": "<a&b>", "line": "\u2028", "n": json.Number("1.0"),
		"nested": map[string]any{"z": []any{1, "x"}}}
	check := func(what string, e domain.Event) {
		t.Helper()
		enc, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if want := fieldsJSON(t, e); string(enc) != want || string(m) != want {
			t.Errorf("%s:\n Encode       %s\n json.Marshal %s\n want         %s", what, enc, m, want)
		}
		if !utf8.ValidString(e.ID + e.Subject) {
			return // decoding replaces the invalid bytes: no round trip
		}
		var back domain.Event
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%s: %v: %s", what, err, enc)
		}
		if again, _ := back.Encode(); string(again) != string(enc) {
			t.Errorf("%s: decoded and encoded again:\n %s\n want %s", what, again, enc)
		}
	}
	for _, subject := range []string{"s-1", "", "s-<&>\"\u00e9\u2028\x00\xff"} {
		e, err := domain.NewEvent("evt-1"+subject, domain.EventSessionCreated, subject, at, data)
		if err != nil {
			t.Fatal(err)
		}
		check("new", e)
		first, _ := e.Encode()
		if second, _ := e.Encode(); &first[0] != &second[0] {
			t.Errorf("an event from NewEvent is encoded again")
		}
		changed := e
		changed.Subject = "other"
		check("subject changed", changed)
		changed = e
		changed.ID = "evt-2"
		check("id changed", changed)
		changed = e
		changed.Data = json.RawMessage(`{"x":1}`)
		check("data changed", changed)
		changed = e
		changed.Time = e.Time.In(time.FixedZone("Y", 7200))
		check("time zone changed", changed)
		check("literal", domain.Event{ID: "evt-3", Type: domain.EventAttestFailed, Data: json.RawMessage(`{}`)})
	}
	// A time json.Marshal cannot encode: NewEvent makes the event, encoding
	// it fails.
	e, err := domain.NewEvent("evt-far", domain.EventAttestFailed, "", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), data)
	if err != nil {
		t.Fatalf("NewEvent of the year 10000: %v", err)
	}
	if b, err := e.Encode(); err == nil {
		t.Errorf("an event of the year 10000 encodes: %s", b)
	}
}
