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

// TestAppendJSONStringFastPath: a string with nothing to escape is
// appended as is, with no allocation (the reason appendJSONString exists:
// every event's id, type and subject go through it); every byte that
// encoding/json escapes or that is not printable ASCII goes to
// json.Marshal, so the result is always encoding/json's.
func TestAppendJSONStringFastPath(t *testing.T) {
	// Not parallel: AllocsPerRun.
	buf := make([]byte, 0, 256)
	for _, s := range []string{"", "evt-0123", "tat.session.created", " !#$%'()*+,-./09:;=?@AZ[]^_`az{|}~"} {
		if n := testing.AllocsPerRun(10, func() { _ = appendJSONString(buf[:0], s) }); n != 0 {
			t.Errorf("%q: %v allocations, want none", s, n)
		}
		if got := appendJSONString(nil, s); string(got) != `"`+s+`"` {
			t.Errorf("%q: appended %s", s, got)
		}
	}
	for _, s := range []string{"\x00", "\x1f", "\x7f", "é", "\xff", `"`, `\`, "<", ">", "&", "a\u2028b"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString([]byte("x"), "ab"+s); string(got) != "x"+string(want[:1])+"ab"+string(want[1:]) {
			t.Errorf("%q: appended %s, want encoding/json's %s", s, got, want)
		}
	}
}

// TestEncodeNoticesChangedData: an event whose Data was replaced by other
// bytes of the same length is encoded afresh, not from NewEvent's bytes.
func TestEncodeNoticesChangedData(t *testing.T) {
	e, err := NewEvent("evt-1", "tat.session.created", "s", time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC), map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Data = json.RawMessage(`{"n":2}`)
	got, err := e.Encode()
	if err != nil || !bytes.Contains(got, []byte(`"data":{"n":2}`)) {
		t.Fatalf("Encode after Data changed: %s %v", got, err)
	}
}
