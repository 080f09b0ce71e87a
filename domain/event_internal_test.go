package domain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestNewEventEncodesOnceWithinRFC3339Years: an event at any year RFC 3339
// can write (0 to 9999) is encoded once, by NewEvent, into the bytes
// encoding/json gives; one outside them is not, and encoding it fails as
// json.Marshal does. A long subject, beyond the room NewEvent makes before
// data, encodes the same.
func TestNewEventEncodesOnceWithinRFC3339Years(t *testing.T) {
	for _, c := range []struct {
		year    int
		subject string
		encoded bool
	}{
		{0, "s", true}, {1, "s", true}, {2031, "s", true}, {9999, "s", true},
		{2031, strings.Repeat("<é>", 200), true},
		{-1, "s", false}, {10000, "s", false},
	} {
		at := time.Date(c.year, 5, 6, 7, 8, 9, 0, time.UTC)
		e, err := NewEvent("evt-1", "tat.session.created", c.subject, at, map[string]any{"a": "<b>", "n": 1})
		if err != nil {
			t.Fatalf("year %d: %v", c.year, err)
		}
		if (e.enc != nil) != c.encoded {
			t.Errorf("year %d: encoded by NewEvent %v, want %v", c.year, e.enc != nil, c.encoded)
		}
		got, err := e.Encode()
		want, wantErr := json.Marshal(plainEvent(e))
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("year %d: Encode gives %s (%v), encoding/json %s (%v)", c.year, got, err, want, wantErr)
		}
		if c.encoded == (err != nil) {
			t.Errorf("year %d: Encode error %v", c.year, err)
		}
	}
}
