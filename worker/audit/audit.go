// Package audit checks the worker's audit promise against the streams:
// every sequence of a command stream (<PREFIX>_ATTEST, or <PREFIX>_ADMIN)
// maps to exactly one event of <PREFIX>_EVENTS, the outcome of the command
// or, for a repeat of a known command id, its light tat.<kind>.repeated.
// Events name the sequence they answer (stream, stream_seq, requested_at).
//
// A sequence with one event is accounted for. One with none is pending
// while its message is still in the stream (the work queue deletes a
// message once it is acknowledged, which the worker does only after the
// event is stored), and lost once the message is gone. One with more
// events is doubled; an event naming a sequence beyond the stream's last
// is unknown. Sequences before the first one an event names are
// unaudited, not lost, when the events read show why their events may be
// missing (outcome events without stream_seq, from workers older than the
// audit, or an events stream that no longer starts at its first message).
//
// The walk reads the command stream first, then the events: a message
// acknowledged after its presence was read had its event stored before the
// events were read, so a race with the workers never shows as lost.
package audit

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Kind selects the command stream audited.
type Kind string

// The command streams.
const (
	Attest Kind = "attest" // <PREFIX>_ATTEST: attest requests
	Admin  Kind = "admin"  // <PREFIX>_ADMIN: profile and user commands
)

// Options say what to audit.
type Options struct {
	Kind     Kind   // default Attest
	Commands string // the command stream, e.g. TAT_ATTEST
	Events   string // the events stream, e.g. TAT_EVENTS

	// A window of sequences (FromSeq, ToSeq: 0 for the start, the last) or
	// of time (Since, Until: the sequences the stream stored in it), not
	// both. With FromSeq set every sequence from it on is checked strictly:
	// none is taken as unaudited.
	FromSeq, ToSeq uint64
	Since, Until   time.Time

	// Progress, when set, is told how far the walk is: its stage, and how
	// many of how many items it has read (total 0 when unknown).
	Progress func(stage string, done, total uint64)
}

// EventsMargin is how far before Since the events are read, so that a
// clock difference between cluster nodes does not hide an event.
const EventsMargin = 10 * time.Minute

// Event is one event that names a command sequence.
type Event struct {
	EventsSeq uint64 `json:"events_seq"` // its sequence in the events stream
	ID        string `json:"id"`
	Type      string `json:"type"`
}

// Finding kinds.
const (
	Pending = "pending" // no event yet, the message is still in the stream
	Lost    = "lost"    // no event, and the message is gone
	Doubled = "doubled" // more than one event
	Unknown = "unknown" // an event names a sequence the stream never had
)

// UnreadableEvent is an event of the events stream the audit could not
// read as an event.
type UnreadableEvent struct {
	EventsSeq uint64 `json:"events_seq"` // its sequence in the events stream
	Why       string `json:"why"`        // names a member or an offset, never a value
}

// Finding is one sequence that is not accounted for by exactly one event.
type Finding struct {
	Seq    uint64  `json:"seq"`
	Kind   string  `json:"kind"`
	Events []Event `json:"events,omitempty"`
}

// Report is the result of a check.
type Report struct {
	Stream string `json:"stream"`
	// FromSeq to ToSeq are the sequences checked (none when ToSeq <
	// FromSeq); LastSeq is the stream's last.
	FromSeq uint64 `json:"from_seq"`
	ToSeq   uint64 `json:"to_seq"`
	LastSeq uint64 `json:"last_seq"`
	// AuditedFrom is the first sequence an event names (0: none does).
	AuditedFrom uint64 `json:"audited_from,omitempty"`
	// Unaudited counts the sequences below AuditedFrom that were not
	// checked, and says why.
	Unaudited       uint64 `json:"unaudited,omitempty"`
	UnauditedReason string `json:"unaudited_reason,omitempty"`

	Checked  uint64    `json:"checked"`
	OK       uint64    `json:"ok"`
	Pending  uint64    `json:"pending"`
	Lost     uint64    `json:"lost"`
	Doubled  uint64    `json:"doubled"`
	Unknown  uint64    `json:"unknown"`
	Findings []Finding `json:"findings"`

	EventsRead int `json:"events_read"`
	// EventsDeleted is how many messages were deleted from inside the
	// events stream: a limits stream loses messages only from its front
	// (age, size), so any is an edit of the audit log.
	EventsDeleted uint64 `json:"events_deleted,omitempty"`
	// LegacyEvents counts outcome events read that name no sequence.
	LegacyEvents int `json:"legacy_events,omitempty"`
	// Unreadable counts the events read that could not be read (see
	// parse), listed in UnreadableEvents. The sequence such an event names
	// is unknown: it may be a second event for a sequence (a doubled one
	// hidden) or the one event of a sequence reported lost. Any fails the
	// check, whatever its window.
	Unreadable       uint64            `json:"unreadable,omitempty"`
	UnreadableEvents []UnreadableEvent `json:"unreadable_events,omitempty"`
	Notes            []string          `json:"notes,omitempty"`
}

// Failed reports whether the check found a sequence lost, doubled or
// unknown, or an event it could not read. Pending sequences are not
// failures: they are still in the work queue.
func (r Report) Failed() bool { return r.Lost+r.Doubled+r.Unknown+r.Unreadable > 0 }

// record is what the audit keeps of one event.
type record struct {
	Event
	Stream      string
	StreamSeq   uint64
	RequestedAt time.Time
	RequestID   string
	ChangeID    string
	// summary fields
	ProfileID        string
	ErrorType        string
	DifferentRequest bool
	storedAt         time.Time // when the events stream stored it
	// unreadable, when set, says why the event could not be read: its
	// other fields but EventsSeq are empty.
	unreadable string
}

// storedEvent is what the audit reads of a stored event: a few members of
// an event that has many more.
type storedEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Stream           string    `json:"stream"`
		StreamSeq        uint64    `json:"stream_seq"`
		RequestedAt      time.Time `json:"requested_at"`
		RequestID        string    `json:"request_id"`
		ChangeID         string    `json:"change_id"`
		ProfileID        string    `json:"profile_id"`
		ErrorType        string    `json:"error_type"`
		DifferentRequest bool      `json:"different_request"`
	} `json:"data"`
}

// parse reads one stored event, strictly (domain.DecodeStrictBusPartial):
// an event that is not JSON, names a member it reads twice or in another
// case, gives one of them a value of another type, or has no id or type,
// is no event a worker wrote. It comes back unreadable, with why: the
// audit cannot tell which sequence it names, and reports it rather than
// skip it.
func parse(eventsSeq uint64, raw []byte) record {
	var e storedEvent
	err := domain.DecodeStrictBusPartial(raw, &e, 0)
	switch {
	case err != nil:
		return record{Event: Event{EventsSeq: eventsSeq}, unreadable: err.Error()}
	case e.ID == "" || e.Type == "":
		return record{Event: Event{EventsSeq: eventsSeq}, unreadable: "no id or type"}
	}
	d := e.Data
	return record{Event: Event{EventsSeq: eventsSeq, ID: e.ID, Type: e.Type}, Stream: d.Stream, StreamSeq: d.StreamSeq,
		RequestedAt: d.RequestedAt, RequestID: d.RequestID, ChangeID: d.ChangeID, ProfileID: d.ProfileID,
		ErrorType: d.ErrorType, DifferentRequest: d.DifferentRequest}
}

// legacy reports whether r is an outcome of kind k from before events
// named their sequence.
func (r record) legacy(k Kind) bool {
	if r.StreamSeq != 0 {
		return false
	}
	if k == Admin {
		return r.ChangeID != ""
	}
	return r.RequestID != ""
}

// commands is what the walk read of the command stream.
type commands struct {
	first, last uint64
	present     map[uint64]time.Time // sequences still in the stream, with their store time
	// lastAfter is the stream's last sequence once the events were read
	// (0: last).
	lastAfter uint64
}

// eventsInfo is what the walk read of the events stream.
type eventsInfo struct {
	first   uint64 // the events stream's first sequence
	deleted uint64 // interior deletes
	records []record
}

// evaluate is the check itself, on what the walk read.
func evaluate(o Options, c commands, ev eventsInfo) Report {
	kind := o.Kind
	if kind == "" {
		kind = Attest
	}
	r := Report{Stream: o.Commands, LastSeq: c.last, EventsRead: len(ev.records), EventsDeleted: ev.deleted, Findings: []Finding{}}
	named := map[uint64][]Event{}
	type point struct {
		seq uint64
		at  time.Time
	}
	var points []point
	for _, rec := range ev.records {
		if rec.unreadable != "" {
			r.Unreadable++
			r.UnreadableEvents = append(r.UnreadableEvents, UnreadableEvent{EventsSeq: rec.EventsSeq, Why: rec.unreadable})
			continue
		}
		if rec.legacy(kind) {
			r.LegacyEvents++
			continue
		}
		if rec.StreamSeq == 0 || rec.Stream != o.Commands {
			continue
		}
		named[rec.StreamSeq] = append(named[rec.StreamSeq], rec.Event)
		if r.AuditedFrom == 0 || rec.StreamSeq < r.AuditedFrom {
			r.AuditedFrom = rec.StreamSeq
		}
		if !rec.RequestedAt.IsZero() {
			points = append(points, point{rec.StreamSeq, rec.RequestedAt})
		}
	}
	for seq, at := range c.present {
		points = append(points, point{seq, at})
	}

	// The window.
	from, to := uint64(1), c.last
	timed := !o.Since.IsZero() || !o.Until.IsZero()
	switch {
	case timed:
		var lo, hi uint64
		for _, p := range points {
			if p.at.Before(o.Since) {
				continue
			}
			if !o.Until.IsZero() && !p.at.Before(o.Until) {
				if hi == 0 || p.seq < hi {
					hi = p.seq
				}
				continue
			}
			if lo == 0 || p.seq < lo {
				lo = p.seq
			}
		}
		switch {
		case o.Since.IsZero():
			// From the start: as without a window.
		case lo == 0:
			from, to = 1, 0 // nothing seen in the window
			r.Notes = append(r.Notes, "no sequence is known to have been stored in the window")
		default:
			from = lo
			r.Notes = append(r.Notes, fmt.Sprintf("the window starts at seq %d, the first one known to be stored at or after %s; a sequence lost just before it cannot be placed in time (use -from-seq)", lo, o.Since.UTC().Format(time.RFC3339)))
		}
		// (A sequence stored after the stream's bounds were read is never
		// checked: its presence was not read.)
		if hi != 0 && hi-1 < to {
			to = hi - 1
		}
	default:
		if o.FromSeq > 0 {
			from = o.FromSeq
		}
		if o.ToSeq > 0 && o.ToSeq < to {
			to = o.ToSeq
		}
	}

	// Below the first sequence an event names, sequences are unaudited
	// when the events read give a reason their events may be missing.
	if boundary := r.AuditedFrom; o.FromSeq == 0 && o.Since.IsZero() {
		if boundary == 0 {
			boundary = to + 1 // no event names a sequence
		}
		var why []string
		if r.LegacyEvents > 0 {
			why = append(why, fmt.Sprintf("%d outcome events name no sequence (workers older than the audit)", r.LegacyEvents))
		}
		if ev.first > 1 {
			why = append(why, fmt.Sprintf("the events stream starts at seq %d (older events are gone by its retention, or were deleted)", ev.first))
		}
		if boundary > from && len(why) > 0 {
			r.Unaudited = boundary - from
			r.UnauditedReason = strings.Join(why, "; ")
			from = boundary
		}
	}
	r.FromSeq, r.ToSeq = from, to

	for seq := from; seq <= to && to > 0; seq++ {
		if o.Progress != nil && seq%4096 == 0 {
			o.Progress("checking", seq-from, to-from+1)
		}
		r.Checked++
		evs := named[seq]
		_, present := c.present[seq]
		switch {
		case len(evs) == 1:
			r.OK++
		case len(evs) > 1:
			r.Doubled++
			r.Findings = append(r.Findings, Finding{Seq: seq, Kind: Doubled, Events: evs})
		case present:
			r.Pending++
			r.Findings = append(r.Findings, Finding{Seq: seq, Kind: Pending})
		default:
			r.Lost++
			r.Findings = append(r.Findings, Finding{Seq: seq, Kind: Lost})
		}
	}
	var beyond []uint64
	for seq := range named {
		if seq > max(c.last, c.lastAfter) {
			beyond = append(beyond, seq)
		}
	}
	slices.Sort(beyond)
	for _, seq := range beyond {
		r.Unknown++
		r.Findings = append(r.Findings, Finding{Seq: seq, Kind: Unknown, Events: named[seq]})
	}
	if ev.deleted > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d messages were deleted from inside the events stream: the audit log was edited", ev.deleted))
	}
	if r.Unreadable > 0 {
		r.Notes = append(r.Notes, unreadableNote(r.UnreadableEvents))
	}
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Seq < r.Findings[j].Seq })
	return r
}

// unreadableNotesListed bounds how many unreadable events a note names.
const unreadableNotesListed = 5

// unreadableNote says which events could not be read, and why.
func unreadableNote(evs []UnreadableEvent) string {
	var parts []string
	for _, e := range evs[:min(len(evs), unreadableNotesListed)] {
		parts = append(parts, fmt.Sprintf("events seq %d (%s)", e.EventsSeq, e.Why))
	}
	more := ""
	if len(evs) > unreadableNotesListed {
		more = fmt.Sprintf(" and %d more", len(evs)-unreadableNotesListed)
	}
	return fmt.Sprintf("%d events could not be read, so the sequences they name are not known (no worker writes such an event): %s%s",
		len(evs), strings.Join(parts, ", "), more)
}

// Line is one row of a summary: how many outcome events of one type (and
// error type) one profile had.
type Line struct {
	ProfileID string `json:"profile_id"`
	Type      string `json:"type"`
	ErrorType string `json:"error_type,omitempty"`
	Count     int    `json:"count"`
}

// Summary counts attest outcomes over a window of time.
type Summary struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Outcomes int       `json:"outcomes"`
	// Repeated counts tat.attest.repeated events, DifferentRequests those
	// of them that reused an id for another request.
	Repeated          int    `json:"repeated"`
	DifferentRequests int    `json:"different_requests"`
	Lines             []Line `json:"lines"`
	// Unreadable counts the events in the window that could not be read:
	// they are in no count above.
	Unreadable int `json:"unreadable,omitempty"`
}

// outcomeTypes are the attest outcome events.
var outcomeTypes = map[string]bool{
	"tat.session.created": true, "tat.session.updated": true, "tat.attest.verified": true, "tat.attest.failed": true,
}

// summarize counts the attest outcomes among records.
func summarize(since, until time.Time, records []record) Summary {
	s := Summary{Since: since, Until: until, Lines: []Line{}}
	counts := map[Line]int{}
	for _, rec := range records {
		switch {
		case rec.unreadable != "":
			s.Unreadable++
		case rec.Type == "tat.attest.repeated":
			s.Repeated++
			if rec.DifferentRequest {
				s.DifferentRequests++
			}
		case outcomeTypes[rec.Type]:
			s.Outcomes++
			counts[Line{ProfileID: rec.ProfileID, Type: rec.Type, ErrorType: rec.ErrorType}]++
		}
	}
	for l, n := range counts {
		l.Count = n
		s.Lines = append(s.Lines, l)
	}
	sort.Slice(s.Lines, func(i, j int) bool {
		a, b := s.Lines[i], s.Lines[j]
		if a.ProfileID != b.ProfileID {
			return a.ProfileID < b.ProfileID
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.ErrorType < b.ErrorType
	})
	return s
}
