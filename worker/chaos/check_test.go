//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker/audit"
)

// checkOpts loosen the check for tests that expect some failures.
type checkOpts struct {
	// allowInternal lets a request end in attest.failed with
	// internal_server_error, but only with a dead letter for it.
	allowInternal bool
	// timeout bounds the wait for every outcome (default 3 minutes).
	timeout time.Duration
}

// storedEvent is one message of the events stream.
type storedEvent struct {
	seq    uint64
	msgID  string
	raw    string
	stored time.Time // when the events stream stored it
	ev     domain.Event
	data   struct {
		RequestID string `json:"request_id"`
		StreamSeq uint64 `json:"stream_seq"` // the request's sequence in the attest stream
		ErrorType string `json:"error_type"`
		Session   *struct {
			SessionID string `json:"session_id"`
		} `json:"session"`
	}
}

// summary is what check found, for the test's log.
type summary struct {
	byType      map[string]int
	internal    []string // request ids that ended in internal_server_error
	deadLetters int
	sessions    int
}

func (s summary) String() string {
	var keys []string
	for k := range s.byType {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, "tat."), s.byType[k]))
	}
	return fmt.Sprintf("%s; sessions in store=%d; internal_server_error=%d; dead letters=%d",
		strings.Join(parts, " "), s.sessions, len(s.internal), s.deadLetters)
}

var attestEventTypes = map[string]bool{
	domain.EventSessionCreated: true, domain.EventSessionUpdated: true,
	domain.EventAttestVerified: true, domain.EventAttestFailed: true,
}

// check is the one verdict of every chaos test. It waits until the attest
// work queue is empty (every request acknowledged, which the worker does
// only after the outcome's event is stored) and the events stream holds an
// outcome for every request; then it requires exactly one outcome event per
// request id, the outcome each kind of request must get, no event stored
// twice, the sessions in the store exactly those session.created named, dead
// letters exactly for the requests abandoned with internal_server_error,
// and no raw token in any event or dead letter.
func (h *harness) check(l *load, o checkOpts) summary {
	h.t.Helper()
	if o.timeout == 0 {
		o.timeout = 3 * time.Minute
	}
	events := h.waitOutcomes(l, o.timeout)
	t := h.t
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// No event stored twice; Nats-Msg-Id is the event id; no raw JWT.
	seen := map[string]uint64{}
	byReq := map[string][]*storedEvent{}
	sum := summary{byType: map[string]int{}}
	for i := range events {
		e := &events[i]
		if prev, ok := seen[e.ev.ID]; ok {
			bad("event %s stored twice (seq %d and %d)", e.ev.ID, prev, e.seq)
		}
		seen[e.ev.ID] = e.seq
		if e.msgID != e.ev.ID {
			bad("event seq %d: Nats-Msg-Id %q is not its id %q", e.seq, e.msgID, e.ev.ID)
		}
		if strings.Contains(e.raw, "eyJ") {
			bad("event seq %d carries something like a JWT: %.200s", e.seq, e.raw)
		}
		if !attestEventTypes[e.ev.Type] {
			continue
		}
		sum.byType[e.ev.Type]++
		byReq[e.data.RequestID] = append(byReq[e.data.RequestID], e)
	}
	for id, evs := range byReq {
		if l.byID[id] == nil {
			bad("outcome for a request never sent: %s (%s)", id, evs[0].ev.Type)
		}
	}

	// Exactly one outcome per request, the right one for its kind.
	isInternal := func(e *storedEvent) bool {
		return e.ev.Type == domain.EventAttestFailed && e.data.ErrorType == "internal_server_error"
	}
	outcome := func(id string) *storedEvent {
		evs := byReq[id]
		switch len(evs) {
		case 0:
			bad("request %s: no outcome (lost)", id)
			return nil
		case 1:
			if isInternal(evs[0]) {
				sum.internal = append(sum.internal, id)
				if !o.allowInternal {
					bad("request %s: internal_server_error", id)
				}
			}
			return evs[0]
		}
		var types []string
		for _, e := range evs {
			types = append(types, fmt.Sprintf("%s(seq %d, id %s)", e.ev.Type, e.seq, e.ev.ID))
		}
		bad("request %s: %d outcomes: %s", id, len(evs), strings.Join(types, ", "))
		return nil
	}
	is := func(e *storedEvent, typ, errType string) bool {
		return e != nil && (e.ev.Type == typ && e.data.ErrorType == errType || isInternal(e))
	}
	outcomes := map[string]*storedEvent{}
	for _, r := range l.reqs {
		outcomes[r.id] = outcome(r.id)
	}
	for _, r := range l.reqs {
		e := outcomes[r.id]
		if e == nil {
			continue
		}
		switch r.kind {
		case kindSession:
			if !is(e, domain.EventSessionCreated, "") {
				bad("request %s (%s): %s %s, want session.created", r.id, r.kind, e.ev.Type, e.data.ErrorType)
			}
		case kindVerify:
			if !is(e, domain.EventAttestVerified, "") {
				bad("request %s (%s): %s %s, want attest.verified", r.id, r.kind, e.ev.Type, e.data.ErrorType)
			}
		case kindUnknownProfile:
			if !is(e, domain.EventAttestFailed, "trusted_token_profile_not_found") {
				bad("request %s (%s): %s %s, want trusted_token_profile_not_found", r.id, r.kind, e.ev.Type, e.data.ErrorType)
			}
		case kindReplayPair:
			p := outcomes[r.partner]
			if p == nil || r.id > r.partner {
				continue
			}
			created, replayed := 0, 0
			for _, x := range []*storedEvent{e, p} {
				switch {
				case x.ev.Type == domain.EventSessionCreated:
					created++
				case x.ev.Type == domain.EventAttestFailed && x.data.ErrorType == "token_replayed":
					replayed++
				case isInternal(x):
				default:
					bad("request %s (replay pair): %s %s", x.data.RequestID, x.ev.Type, x.data.ErrorType)
				}
			}
			if created > 1 || replayed > 1 || (created+replayed == 2 && created != 1) {
				bad("replay pair %s/%s: %d sessions, %d token_replayed: one token was used twice", r.id, r.partner, created, replayed)
			}
			if created+replayed < 2 && !o.allowInternal {
				bad("replay pair %s/%s: %d sessions, %d token_replayed", r.id, r.partner, created, replayed)
			}
		}
	}

	// One session per session.created, and no other.
	sessionIDs := map[string]bool{}
	for _, evs := range byReq {
		for _, e := range evs {
			if e.ev.Type != domain.EventSessionCreated {
				continue
			}
			if e.data.Session == nil || e.data.Session.SessionID == "" {
				bad("session.created seq %d names no session", e.seq)
				continue
			}
			if sessionIDs[e.data.Session.SessionID] {
				bad("session %s created twice", e.data.Session.SessionID)
			}
			sessionIDs[e.data.Session.SessionID] = true
		}
	}
	// The sessions in the store are exactly those the events announced:
	// the same ids, not merely as many.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	stored, err := h.store.LoadSessions(ctx, time.Time{})
	cancel()
	if err != nil {
		t.Fatalf("load sessions: %v", err)
	}
	storedIDs := map[string]bool{}
	for _, st := range stored {
		storedIDs[st.Session.SessionID] = true
	}
	sum.sessions = len(storedIDs)
	var unannounced, missing []string
	for id := range storedIDs {
		if !sessionIDs[id] {
			unannounced = append(unannounced, id)
		}
	}
	for id := range sessionIDs {
		if !storedIDs[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(unannounced)
	sort.Strings(missing)
	if len(unannounced) > 0 {
		bad("%d sessions in the store have no session.created event: %v", len(unannounced), firstN(unannounced, 20))
	}
	if len(missing) > 0 {
		bad("%d sessions announced by session.created are not in the store: %v", len(missing), firstN(missing, 20))
	}
	if len(sessionIDs) != sum.byType[domain.EventSessionCreated] {
		bad("%d session.created events name %d sessions", sum.byType[domain.EventSessionCreated], len(sessionIDs))
	}

	// Dead letters: exactly for the abandoned requests, once each, no payload.
	dead := h.deadLetters()
	sum.deadLetters = len(dead)
	deadFor := map[string]int{}
	for _, d := range dead {
		deadFor[d.MsgID]++
		if strings.Contains(d.raw, "eyJ") || strings.Contains(d.raw, `"token"`) {
			bad("dead letter for %s carries the payload: %s", d.MsgID, d.raw)
		}
	}
	for id, c := range deadFor {
		if c > 1 {
			bad("request %s dead-lettered %d times", id, c)
		}
		if e := outcomes[id]; e != nil && !isInternal(e) {
			bad("request %s was dead-lettered but ended in %s %s", id, e.ev.Type, e.data.ErrorType)
		}
	}
	for _, id := range sum.internal {
		if deadFor[id] == 0 {
			bad("request %s ended in internal_server_error without a dead letter", id)
		}
	}

	// The audit (attestctl audit check): every sequence of the attest
	// stream maps to exactly one event (outcome or attest.repeated).
	actx, acancel := context.WithTimeout(context.Background(), 2*time.Minute)
	rep, err := audit.Check(actx, h.js, audit.Options{Commands: attestStream, Events: eventsStream, FromSeq: 1})
	acancel()
	if err != nil {
		bad("audit: %v", err)
	} else {
		for _, f := range rep.Findings {
			bad("audit: %s seq %d %s %v", attestStream, f.Seq, f.Kind, f.Events)
		}
		if rep.Checked != rep.LastSeq {
			bad("audit: %d of the %d sequences of %s checked", rep.Checked, rep.LastSeq, attestStream)
		}
	}

	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 40 {
			problems = append(problems[:40], fmt.Sprintf("... and %d more", len(problems)-40))
		}
		t.Errorf("check failed (%s):\n  %s", sum, strings.Join(problems, "\n  "))
	}
	h.logf("check: %d requests: %s", len(l.reqs), sum)
	return sum
}
