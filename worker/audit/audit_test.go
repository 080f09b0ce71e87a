package audit

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var base = time.Date(2031, 5, 6, 7, 0, 0, 0, time.UTC)

// ev is an event of TAT_ATTEST naming seq, stored at base+seq seconds.
func ev(eventsSeq, seq uint64, typ string) record {
	return record{Event: Event{EventsSeq: eventsSeq, ID: fmt.Sprintf("evt-%d", eventsSeq), Type: typ},
		Stream: "TAT_ATTEST", StreamSeq: seq, RequestedAt: base.Add(time.Duration(seq) * time.Second), RequestID: fmt.Sprint("r-", seq)}
}

// legacyEv is an outcome event from before events named a sequence.
func legacyEv(eventsSeq uint64) record {
	return record{Event: Event{EventsSeq: eventsSeq, ID: fmt.Sprintf("evt-%d", eventsSeq), Type: "tat.attest.failed"}, RequestID: "old"}
}

func kinds(r Report) string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%d:%s", f.Seq, f.Kind))
	}
	return strings.Join(out, " ")
}

// TestAuditEvaluate: the verdict on every kind of sequence, and how the
// window and the unaudited range are chosen.
func TestAuditEvaluate(t *testing.T) {
	opts := Options{Commands: "TAT_ATTEST", Events: "TAT_EVENTS"}
	six := []record{ev(1, 1, "tat.session.created"), ev(2, 2, "tat.attest.failed"), ev(3, 3, "tat.attest.repeated"),
		ev(4, 4, "tat.attest.verified"), ev(5, 5, "tat.session.updated"), ev(6, 6, "tat.attest.failed")}
	cases := []struct {
		name     string
		opts     func(o *Options)
		c        commands
		events   []record
		first    uint64 // events stream's first seq (default 1)
		deleted  uint64
		want     string // findings
		from, to uint64
		failed   bool
		unaud    uint64
	}{
		{name: "every sequence has one event", c: commands{first: 7, last: 6}, events: six, from: 1, to: 6},
		{name: "an event removed: lost", c: commands{first: 7, last: 6}, events: append(append([]record{}, six[:2]...), six[3:]...),
			want: "3:lost", from: 1, to: 6, failed: true},
		{name: "a message still in the work queue: pending, not a failure",
			c: commands{first: 7, last: 7, present: map[uint64]time.Time{7: base.Add(7 * time.Second)}}, events: six, want: "7:pending", from: 1, to: 7},
		{name: "an event ahead of its ack: the message is present and has its event",
			c: commands{first: 6, last: 6, present: map[uint64]time.Time{6: base}}, events: six, from: 1, to: 6},
		{name: "two events for one sequence: doubled", c: commands{first: 7, last: 6}, events: append(append([]record{}, six...), ev(7, 4, "tat.attest.failed")),
			want: "4:doubled", from: 1, to: 6, failed: true},
		{name: "an event naming a sequence the stream never had: unknown", c: commands{first: 7, last: 6}, events: append(append([]record{}, six...), ev(7, 99, "tat.attest.failed")),
			want: "99:unknown", from: 1, to: 6, failed: true},
		{name: "a request published during the walk: its event is neither checked nor unknown",
			c: commands{first: 7, last: 6, lastAfter: 7}, events: append(append([]record{}, six...), ev(7, 7, "tat.attest.verified")), from: 1, to: 6},
		{name: "another stream's sequences are not this one's",
			c: commands{first: 7, last: 6}, events: append(append([]record{}, six...), record{Event: Event{EventsSeq: 7, Type: "tat.profile.created"}, Stream: "TAT_ADMIN", StreamSeq: 2, ChangeID: "c"}),
			from: 1, to: 6},
		{name: "older outcome events without a sequence: the sequences before the first named are unaudited",
			c: commands{first: 9, last: 8}, events: append([]record{legacyEv(1), legacyEv(2)}, ev(3, 3, "x"), ev(4, 4, "x"), ev(5, 5, "x"), ev(6, 6, "x"), ev(7, 8, "x")),
			want: "7:lost", from: 3, to: 8, failed: true, unaud: 2},
		{name: "an events stream past its retention: unaudited before the first named",
			c: commands{first: 7, last: 6}, events: six[3:], first: 50, from: 4, to: 6, unaud: 3},
		{name: "no reason to excuse a missing event: lost from seq 1",
			c: commands{first: 7, last: 6}, events: six[3:], want: "1:lost 2:lost 3:lost", from: 1, to: 6, failed: true},
		{name: "an explicit -from-seq is strict, even with older events",
			opts: func(o *Options) { o.FromSeq = 1 }, c: commands{first: 7, last: 6}, events: append([]record{legacyEv(1)}, six[2:]...),
			want: "1:lost 2:lost", from: 1, to: 6, failed: true},
		{name: "a sequence window", opts: func(o *Options) { o.FromSeq, o.ToSeq = 2, 4 }, c: commands{first: 7, last: 6}, events: six[1:4], from: 2, to: 4},
		{name: "a time window is the sequences stored in it",
			opts: func(o *Options) { o.Since, o.Until = base.Add(2*time.Second), base.Add(5*time.Second) },
			c:    commands{first: 7, last: 6}, events: append(append([]record{}, six[:2]...), six[3:]...), want: "3:lost", from: 2, to: 4, failed: true},
		{name: "a time window up to now ends at the stream's last",
			opts: func(o *Options) { o.Since = base.Add(5 * time.Second) },
			c:    commands{first: 7, last: 8, present: map[uint64]time.Time{8: base.Add(8 * time.Second)}}, events: six, want: "7:lost 8:pending", from: 5, to: 8, failed: true},
		{name: "a time window never reaches past the stream's last as read",
			opts: func(o *Options) { o.Since, o.Until = base.Add(5*time.Second), base.Add(9*time.Second) },
			c:    commands{first: 7, last: 6, lastAfter: 12}, events: append(append([]record{}, six...), ev(7, 12, "x")), from: 5, to: 6},
		{name: "-until alone is a window from the start",
			opts: func(o *Options) { o.Until = base.Add(3 * time.Second) },
			c:    commands{first: 7, last: 6}, events: six[1:], want: "1:lost", from: 1, to: 2, failed: true},
		{name: "deleted events are reported", c: commands{first: 7, last: 6}, events: six, deleted: 2, from: 1, to: 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.opts != nil {
				tc.opts(&o)
			}
			if tc.c.present == nil {
				tc.c.present = map[uint64]time.Time{}
			}
			first := tc.first
			if first == 0 {
				first = 1
			}
			r := evaluate(o, tc.c, eventsInfo{first: first, deleted: tc.deleted, records: tc.events})
			if got := kinds(r); got != tc.want {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
			if r.FromSeq != tc.from || r.ToSeq != tc.to || r.Failed() != tc.failed || r.Unaudited != tc.unaud {
				t.Errorf("window %d-%d failed %v unaudited %d (%s); want %d-%d %v %d", r.FromSeq, r.ToSeq, r.Failed(), r.Unaudited, r.UnauditedReason, tc.from, tc.to, tc.failed, tc.unaud)
			}
			if r.Checked != r.OK+r.Pending+r.Lost+r.Doubled || r.Checked != tc.to-tc.from+1 {
				t.Errorf("counts %+v do not add up", r)
			}
			if tc.deleted > 0 && (r.EventsDeleted != tc.deleted || !strings.Contains(strings.Join(r.Notes, " "), "edited")) {
				t.Errorf("deleted events not reported: %+v", r)
			}
		})
	}
}

// TestAuditSummarize counts outcomes per profile, type and error type, and
// repeats apart.
func TestAuditSummarize(t *testing.T) {
	rec := func(typ, profile, errType string, different bool) record {
		return record{Event: Event{Type: typ}, ProfileID: profile, ErrorType: errType, DifferentRequest: different}
	}
	s := summarize(base, base.Add(time.Hour), []record{
		rec("tat.session.created", "p1", "", false), rec("tat.session.created", "p1", "", false),
		rec("tat.attest.failed", "p1", "token_replayed", false), rec("tat.attest.failed", "", "invalid_request", false),
		rec("tat.attest.repeated", "", "", false), rec("tat.attest.repeated", "", "invalid_request", true),
		rec("tat.profile.created", "p1", "", false), rec("tat.jwks.refreshed", "p1", "", false),
	})
	want := []Line{
		{ProfileID: "", Type: "tat.attest.failed", ErrorType: "invalid_request", Count: 1},
		{ProfileID: "p1", Type: "tat.attest.failed", ErrorType: "token_replayed", Count: 1},
		{ProfileID: "p1", Type: "tat.session.created", Count: 2},
	}
	if s.Outcomes != 4 || s.Repeated != 2 || s.DifferentRequests != 1 || !reflect.DeepEqual(s.Lines, want) {
		t.Errorf("summary %+v", s)
	}
}
