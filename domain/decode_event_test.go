package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

func TestDecodeStrictBus(t *testing.T) {
	t.Parallel()
	good, err := domain.NewEvent("evt-1", domain.EventUserCreated, "user-1", time.Now(), map[string]any{"user": map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(good)
	var e domain.Event
	if err := domain.DecodeStrictBus(raw, &e, 0); err != nil || e.ID != "evt-1" || e.Type != domain.EventUserCreated {
		t.Fatalf("a good event: %v %+v", err, e)
	}
	nest := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	base := `{"specversion":"1.0","id":"evt-1","source":"tat/worker","type":"tat.user.created","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","data":%s}`
	for _, tc := range []struct {
		name, data, want string
		max              int
	}{
		{"a member name in another case", strings.Replace(string(raw), `"id"`, `"ID"`, 1), "unknown field", 0},
		{"a member twice", strings.Replace(string(raw), `"id":"evt-1"`, `"id":"evt-1","id":"evt-2"`, 1), "sent twice", 0},
		{"an unknown field", strings.Replace(string(raw), `"id"`, `"idx":1,"id"`, 1), "unknown field", 0},
		{"too deep", strings.Replace(base, "%s", nest(64), 1), "nested deeper", 0},
		{"arrays too deep", strings.Replace(base, "%s", strings.Repeat("[", 100000)+strings.Repeat("]", 100000), 1), "nested deeper", 2 << 20},
		{"over the size", string(raw), "over the limit", 10},
		{"trailing data", string(raw) + "{}", "after", 0},
		{"not UTF-8", strings.Replace(string(raw), "tat/worker", "tat/\xffworker", 1), "UTF-8", 0},
		{"truncated", string(raw[:len(raw)-1]), "", 0},
		{"a string", `"x"`, "the payload must be an object", 0},
		{"an array", `[{"id":"evt-1"}]`, "the payload must be an object", 0},
	} {
		var e domain.Event
		err := domain.DecodeStrictBus([]byte(tc.data), &e, tc.max)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// A member of a struct twice, in the data decoded on its own.
	var d struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	if err := domain.DecodeStrictBus([]byte(`{"user":{"name":"a","name":"b"}}`), &d, 0); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a struct member twice: %v", err)
	}
	// Depth 63 inside an event (64 with the envelope) is fine.
	var ok domain.Event
	if err := domain.DecodeStrictBus([]byte(strings.Replace(base, "%s", nest(63), 1)), &ok, 0); err != nil {
		t.Errorf("63 levels of data: %v", err)
	}
}

// TestDecodeStrictBusSizeLimitIsInclusive: maxBytes is the largest size
// read, so JSON of exactly maxBytes decodes and one byte more is refused.
func TestDecodeStrictBusSizeLimitIsInclusive(t *testing.T) {
	t.Parallel()
	ev, err := domain.NewEvent("evt-1", domain.EventUserCreated, "user-1", time.Now(), map[string]any{"user": map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	var e domain.Event
	if err := domain.DecodeStrictBus(raw, &e, len(raw)); err != nil || e.ID != "evt-1" {
		t.Errorf("exactly maxBytes (%d): %v", len(raw), err)
	}
	if err := domain.DecodeStrictBus(raw, &e, len(raw)-1); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("one byte over maxBytes: %v", err)
	}
}
