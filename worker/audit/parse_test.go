package audit

import (
	"strings"
	"testing"
	"time"
)

// read is parse as the walk calls it.
func read(eventsSeq uint64, raw string) record { return parse(eventsSeq, []byte(raw)) }

// stored is a stored event with data as its data.
func stored(id, data string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"tat/worker","type":"tat.attest.failed",` +
		`"time":"2031-05-06T07:00:00Z","datacontenttype":"application/json","data":` + data + `}`
}

// TestAuditParse: the members the audit reads are read strictly; an event
// that is not one a worker wrote comes back unreadable, saying why.
func TestAuditParse(t *testing.T) {
	good := read(9, stored("evt-1", `{"request_id":"r-1","profile_id":"p","user_id":"u","status_code":400,"error_type":"invalid_request",`+
		`"session":{"session_id":"s","Stream_Seq":1,"stream":"x","stream":"y"},"stream":"TAT_ATTEST","stream_seq":4,"requested_at":"2031-05-06T07:00:04Z"}`))
	want := record{Event: Event{EventsSeq: 9, ID: "evt-1", Type: "tat.attest.failed"}, Stream: "TAT_ATTEST", StreamSeq: 4,
		RequestedAt: base.Add(4 * time.Second), RequestID: "r-1", ProfileID: "p", ErrorType: "invalid_request"}
	if good.unreadable != "" || !good.RequestedAt.Equal(want.RequestedAt) {
		t.Fatalf("a good event: %+v", good)
	}
	good.RequestedAt = want.RequestedAt
	if good != want {
		t.Errorf("a good event:\n got %+v\nwant %+v", good, want)
	}
	repeated := read(10, `{"id":"evt-2","type":"tat.attest.repeated","data":{"request_id":"r-1","first_event_id":"evt-1","different_request":true,"stream":"TAT_ATTEST","stream_seq":5}}`)
	if repeated.unreadable != "" || !repeated.DifferentRequest || repeated.StreamSeq != 5 {
		t.Errorf("a repeat: %+v", repeated)
	}
	if r := read(11, `{"id":"evt-3","type":"tat.jwks.refreshed","data":{"profile_id":"p","jwks_url":"https://x","added_kids":["a"]}}`); r.unreadable != "" || r.ProfileID != "p" {
		t.Errorf("an event naming no sequence: %+v", r)
	}
	if r := read(12, `{"id":"evt-4","type":"tat.user.created"}`); r.unreadable != "" {
		t.Errorf("an event without data: %+v", r)
	}

	for _, tc := range []struct{ name, raw, why string }{
		{"stream_seq twice", stored("e", `{"stream":"TAT_ATTEST","stream_seq":4,"stream_seq":0}`), `field "data.stream_seq" is sent twice`},
		{"stream_seq in another case", stored("e", `{"stream":"TAT_ATTEST","stream_seq":4,"Stream_Seq":0}`), `member "data.Stream_Seq" differs from field "stream_seq"`},
		{"stream_seq in capitals only", stored("e", `{"stream":"TAT_ATTEST","STREAM_SEQ":4}`), "only by case"},
		{"stream_seq with a long s", stored("e", `{"stream":"TAT_ATTEST","ſtream_seq":4}`), "only by case"},
		{"stream_seq fullwidth", stored("e", `{"stream":"TAT_ATTEST","ｓｔｒｅａｍ_ｓｅｑ":4}`), "only by case"},
		{"stream twice", stored("e", `{"stream":"TAT_ATTEST","stream_seq":4,"stream":"OTHER"}`), `field "data.stream" is sent twice`},
		{"request_id twice", stored("e", `{"request_id":"r-1","request_id":""}`), `field "data.request_id" is sent twice`},
		{"request_id in another case", stored("e", `{"request_id":"r-1","Request_ID":""}`), `member "data.Request_ID" differs from field "request_id"`},
		{"an unread member twice", stored("e", `{"stream":"TAT_ATTEST","stream_seq":4,"status_code":400,"status_code":200}`), `member "data.status_code" is sent twice`},
		{"id twice", `{"id":"e-1","type":"tat.attest.failed","id":"e-2","data":{}}`, `field "id" is sent twice`},
		{"type in another case", `{"id":"e-1","type":"tat.attest.failed","Type":"tat.session.created","data":{}}`, "only by case"},
		{"stream_seq a string", stored("e", `{"stream":"TAT_ATTEST","stream_seq":"4"}`), `field "data.stream_seq" must be a uint64`},
		{"stream_seq negative", stored("e", `{"stream":"TAT_ATTEST","stream_seq":-4}`), "must be a uint64"},
		{"requested_at not a time", stored("e", `{"stream":"TAT_ATTEST","stream_seq":4,"requested_at":"yesterday"}`), "must be a time.Time"},
		{"data a string", stored("e", `"x"`), `field "data" must be an object`},
		{"no id", `{"type":"tat.attest.failed","data":{"stream":"TAT_ATTEST","stream_seq":4}}`, "no id or type"},
		{"null", `null`, "no id or type"},
		{"not JSON", `{"id":"e-1",`, "not valid"},
		{"trailing data", stored("e", `{}`) + `{}`, "data after the JSON object"},
		{"not UTF-8", stored("e\xff", `{}`), "UTF-8"},
	} {
		r := read(7, tc.raw)
		if !strings.Contains(r.unreadable, tc.why) {
			t.Errorf("%s: unreadable %q, want %q", tc.name, r.unreadable, tc.why)
		}
		if r.unreadable != "" && (r.EventsSeq != 7 || r.ID != "" || r.Type != "" || r.StreamSeq != 0 || r.RequestID != "") {
			t.Errorf("%s: an unreadable event keeps what was read of it: %+v", tc.name, r)
		}
	}
}

// TestAuditFlagsUnreadableEvents: an event the audit cannot read fails
// the check, is listed with why, and is in no other count. Each forged
// event here would otherwise hide from the audit: read as
// encoding/json reads (the last of two members, names in any case), it
// names no sequence of the stream.
func TestAuditFlagsUnreadableEvents(t *testing.T) {
	opts := Options{Commands: "TAT_ATTEST", Events: "TAT_EVENTS"}
	var six []record
	for seq := uint64(1); seq <= 6; seq++ {
		six = append(six, read(seq, stored("evt-"+string(rune('0'+seq)), `{"request_id":"r-`+string(rune('0'+seq))+
			`","stream":"TAT_ATTEST","stream_seq":`+string(rune('0'+seq))+`}`)))
	}
	for _, tc := range []struct{ name, data, why string }{
		{"a second event for seq 4, stream_seq twice", `{"request_id":"r-4","stream":"TAT_ATTEST","stream_seq":4,"stream_seq":0}`, "sent twice"},
		{"a second event for seq 4, stream_seq in another case", `{"request_id":"r-4","stream":"TAT_ATTEST","stream_seq":4,"STREAM_SEQ":0}`, "only by case"},
		{"a second event for seq 4, stream in another case", `{"request_id":"r-4","stream":"TAT_ATTEST","stream_seq":4,"Stream":"TAT_ADMIN"}`, "only by case"},
		{"an outcome without a sequence, request_id twice", `{"request_id":"old","request_id":""}`, "sent twice"},
		{"an outcome without a sequence, request_id in another case", `{"request_id":"old","REQUEST_ID":""}`, "only by case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := read(7, stored("evt-forged", tc.data))
			rec := forged
			rec.storedAt = base
			events := append(append([]record{}, six...), rec)
			r := evaluate(opts, commands{first: 7, last: 6, present: map[uint64]time.Time{}}, eventsInfo{first: 1, records: events})
			if !r.Failed() || r.Unreadable != 1 || len(r.UnreadableEvents) != 1 || r.UnreadableEvents[0].EventsSeq != 7 ||
				!strings.Contains(r.UnreadableEvents[0].Why, tc.why) {
				t.Fatalf("the forged event is not flagged: failed %v, unreadable %d %+v", r.Failed(), r.Unreadable, r.UnreadableEvents)
			}
			if r.OK != 6 || r.Checked != 6 || r.EventsRead != 7 || r.LegacyEvents != 0 || kinds(r) != "" {
				t.Errorf("the other counts: %+v", r)
			}
			if note := strings.Join(r.Notes, " "); !strings.Contains(note, "1 events could not be read") || !strings.Contains(note, "events seq 7 (") {
				t.Errorf("notes %q", r.Notes)
			}
			if s := summarize(base, base.Add(time.Hour), events); s.Unreadable != 1 || s.Outcomes != 6 {
				t.Errorf("summary %+v", s)
			}
		})
	}
	// Many: the note names the first few.
	events := append([]record{}, six...)
	for i := range 8 {
		events = append(events, read(uint64(7+i), `{`))
	}
	r := evaluate(opts, commands{first: 7, last: 6, present: map[uint64]time.Time{}}, eventsInfo{first: 1, records: events})
	if note := strings.Join(r.Notes, " "); r.Unreadable != 8 || len(r.UnreadableEvents) != 8 || !strings.Contains(note, "events seq 11 (") ||
		strings.Contains(note, "events seq 12 (") || !strings.Contains(note, "and 3 more") {
		t.Errorf("8 unreadable: %d, notes %q", r.Unreadable, r.Notes)
	}
}
