package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/audit"
	"github.com/tat-worker/attest/worker/workertest"
)

// auditEnv is a real worker with one PEM profile and one user.
type auditEnv struct {
	t       *testing.T
	env     *workertest.Env
	w       *workertest.Worker
	iss     *workertest.Issuer
	profile string
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	env := workertest.NewEnv(t)
	a := &auditEnv{t: t, env: env, w: env.StartWorker(nil, nil), iss: workertest.NewIssuer(t, "https://idp.example.com/", "my-app")}
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": "p-1", "op": "upsert", "profile": map[string]any{
		"issuer": a.iss.Iss, "audience": a.iss.Aud, "public_keys": []string{a.iss.PublicPEM()},
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
	a.profile = rep["profile"].(map[string]any)["profile_id"].(string)
	env.Request(env.Subject("users", "commands"), "", map[string]any{"change_id": "u-1", "op": "upsert",
		"user": map[string]any{"emails": []any{map[string]any{"email": "ada@example.com", "verified": true}}}})
	return a
}

func (a *auditEnv) token() string {
	return a.iss.Token(map[string]any{"email": "ada@example.com", "jti": uuid.NewString()})
}

// ctl runs attestctl against the env and checks its exit status.
func (a *auditEnv) ctl(wantCode int, args ...string) string {
	a.t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-nats", a.env.NATSURL}, args...), &out, &errb)
	if code != wantCode {
		a.t.Fatalf("attestctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
	}
	return out.String()
}

// report runs audit check -json and decodes it.
func (a *auditEnv) report(wantCode int, args ...string) audit.Report {
	a.t.Helper()
	var r audit.Report
	out := a.ctl(wantCode, append([]string{"audit", "check", "-json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		a.t.Fatalf("audit check -json: %v\n%s", err, out)
	}
	return r
}

// publish stores a message in the attest stream without waiting for a
// reply, and returns its sequence (0 when JetStream dropped it as a
// duplicate).
func (a *auditEnv) publish(subject, msgID string, body []byte) uint64 {
	a.t.Helper()
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(worker.ReplyHeader, "_INBOX.nobody")
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := a.env.JS.PublishMsg(ctx, m)
	if err != nil {
		a.t.Fatalf("publish: %v", err)
	}
	if ack.Duplicate {
		return 0
	}
	return ack.Sequence
}

// settle waits until the attest work queue is empty.
func (a *auditEnv) settle() {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := a.env.JS.Stream(context.Background(), "TAT_ATTEST")
		if err == nil && s.CachedInfo().State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatal("the attest work queue did not empty")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventSeqOf returns the events-stream sequence of the event of type typ
// whose data names requestID.
func (a *auditEnv) eventSeqOf(requestID, typ string) uint64 {
	a.t.Helper()
	ctx := context.Background()
	s, err := a.env.JS.Stream(ctx, "TAT_EVENTS")
	if err != nil {
		a.t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var e struct {
			Type string `json:"type"`
			Data struct {
				RequestID string `json:"request_id"`
			} `json:"data"`
		}
		if json.Unmarshal(m.Data, &e) == nil && e.Type == typ && e.Data.RequestID == requestID {
			return seq
		}
	}
	a.t.Fatalf("no %s event for %s", typ, requestID)
	return 0
}

// TestAuditCheckFindsLostAndPending: after a normal run the check finds
// nothing (and exits 0) in both command streams; a request published
// while no worker runs is pending (not a failure); an outcome event
// deleted from the events stream, and a request deleted from the work
// queue before any worker saw it, are lost (exit 1), and the check says
// the audit log was edited. Once a worker runs again the pending request
// is answered.
func TestAuditCheckFindsLostAndPending(t *testing.T) {
	a := newAuditEnv(t)
	subject := a.env.Subject("attest", "requests")
	for i, extra := range []map[string]any{{"session_duration_minutes": 10}, {}, {"profile_id": "nope"}, {"token": "a.b.c"}} {
		p := map[string]any{"request_id": fmt.Sprint("ok-", i), "profile_id": a.profile, "token": a.token()}
		for k, v := range extra {
			p[k] = v
		}
		a.env.Request(subject, "", p)
	}
	out := a.ctl(0, "audit", "check")
	if !strings.Contains(out, "audit of TAT_ATTEST: sequences 1-4 of 4") || !strings.Contains(out, "result: 4 checked: 4 ok, 0 pending, 0 lost, 0 doubled, 0 unknown; 0 events unreadable: OK") {
		t.Fatalf("after a normal run:\n%s", out)
	}
	if out := a.ctl(0, "audit", "check", "-stream", "admin"); !strings.Contains(out, "result: 2 checked: 2 ok") {
		t.Fatalf("admin stream after a normal run:\n%s", out)
	}

	// No worker: one request waits in the queue, another is removed from
	// it before anyone saw it.
	if err := a.w.Stop(); err != nil {
		t.Fatal(err)
	}
	body := func(id string) []byte {
		b, _ := json.Marshal(map[string]any{"request_id": id, "profile_id": a.profile, "token": a.token()})
		return b
	}
	waiting := a.publish(subject, "", body("while-down"))
	removed := a.publish(subject, "", body("removed"))
	ctx := context.Background()
	attest, err := a.env.JS.Stream(ctx, "TAT_ATTEST")
	if err != nil {
		t.Fatal(err)
	}
	if err := attest.DeleteMsg(ctx, removed); err != nil {
		t.Fatal(err)
	}
	// And the outcome event of ok-1 is deleted from the audit log.
	events, err := a.env.JS.Stream(ctx, "TAT_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if err := events.DeleteMsg(ctx, a.eventSeqOf("ok-1", "tat.attest.verified")); err != nil {
		t.Fatal(err)
	}

	out = a.ctl(1, "audit", "check")
	for _, want := range []string{
		fmt.Sprintf("seq %d pending: no event yet, still in the stream", waiting),
		"seq 2 lost: no event, and no longer in the stream",
		fmt.Sprintf("seq %d lost", removed),
		"note: 1 messages were deleted from inside the events stream: the audit log was edited",
		"result: 6 checked: 3 ok, 1 pending, 2 lost, 0 doubled, 0 unknown; 0 events unreadable: FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the check does not say %q:\n%s", want, out)
		}
	}
	r := a.report(1)
	if r.Pending != 1 || r.Lost != 2 || r.FromSeq != 1 || r.ToSeq != 6 || r.EventsDeleted != 1 || !r.Failed() {
		t.Errorf("JSON report %+v", r)
	}
	// A window that leaves seq 2 out passes.
	if r := a.report(0, "-from-seq", "3", "-to-seq", "4"); r.Checked != 2 || r.OK != 2 {
		t.Errorf("seq window 3-4: %+v", r)
	}

	// A worker again: the waiting request is answered.
	a.w = a.env.StartWorker(nil, nil)
	a.settle()
	r = a.report(1)
	if r.Pending != 0 || r.Lost != 2 || r.OK != 4 {
		t.Errorf("after the worker answered the waiting request: %+v", r)
	}
}

// TestAuditCheckTimeWindowAndSummary: -since picks the sequences stored
// from then on, and audit summary counts outcomes per profile, type and
// error type, repeats apart.
func TestAuditCheckTimeWindowAndSummary(t *testing.T) {
	a := newAuditEnv(t)
	subject := a.env.Subject("attest", "requests")
	a.env.Request(subject, "", map[string]any{"request_id": "early", "profile_id": a.profile, "token": a.token()})
	time.Sleep(1100 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	dup := map[string]any{"request_id": "late", "profile_id": a.profile, "token": a.token(), "session_duration_minutes": 10}
	a.env.Request(subject, "", dup)
	a.env.Request(subject, "", dup)
	a.env.Request(subject, "", map[string]any{"request_id": "bad", "profile_id": "nope", "token": "a.b.c"})

	r := a.report(0, "-since", mid.Format(time.RFC3339Nano))
	if r.FromSeq != 2 || r.ToSeq != 4 || r.OK != 3 {
		t.Errorf("-since the middle: %+v", r)
	}
	var sum audit.Summary
	out := a.ctl(0, "audit", "summary", "-since", "1h", "-json")
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{a.profile + " tat.attest.verified ": 1, a.profile + " tat.session.created ": 1, "nope tat.attest.failed trusted_token_profile_not_found": 1}
	got := map[string]int{}
	for _, l := range sum.Lines {
		got[l.ProfileID+" "+l.Type+" "+l.ErrorType] = l.Count
	}
	if sum.Outcomes != 3 || sum.Repeated != 1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("summary %+v", sum)
	}
	if text := a.ctl(0, "audit", "summary"); !strings.Contains(text, "3 outcomes, 1 repeated") || !strings.Contains(text, "session.created") {
		t.Errorf("summary text:\n%s", text)
	}
}

// TestAuditAttackerCannotHideARequest publishes on the attest subjects
// the ways a publisher might try to get a request answered without a
// trace, and checks that every sequence the stream gave still maps to
// exactly one event: an id, the same id again (a repeat), the same id with
// another request, the same Nats-Msg-Id within the duplicate window
// (JetStream drops it: no sequence, no answer), no id at all, ids shaped
// like the worker's own sequence ids, a payload over the worker's 64 KiB
// limit, one over the stream's message size (refused: no sequence), and
// another subject under tat.attest.requests. Then events forged onto the
// events stream are caught: a second event for a sequence is doubled, one
// for a sequence the stream never had is unknown.
func TestAuditAttackerCannotHideARequest(t *testing.T) {
	a := newAuditEnv(t)
	subject := a.env.Subject("attest", "requests")
	js := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	named := js(map[string]any{"request_id": "atk", "profile_id": a.profile, "token": a.token(), "session_duration_minutes": 10})
	var seqs []uint64
	send := func(subj, msgID string, body []byte) {
		t.Helper()
		if seq := a.publish(subj, msgID, body); seq != 0 {
			seqs = append(seqs, seq)
		}
	}
	send(subject, "", named)
	send(subject, "", named)                                                                                // the same request again
	send(subject, "", js(map[string]any{"request_id": "atk", "profile_id": a.profile, "token": a.token()})) // the id, another request
	send(subject, "m-1", js(map[string]any{"request_id": "m-1", "profile_id": a.profile, "token": a.token()}))
	send(subject, "m-1", js(map[string]any{"request_id": "m-1", "profile_id": a.profile, "token": a.token()})) // dropped by JetStream
	send(subject, "", js(map[string]any{"profile_id": a.profile, "token": a.token()}))                         // no id
	send(subject, "#seq:1", js(map[string]any{"request_id": "#seq:2", "profile_id": a.profile, "token": a.token()}))
	send(subject, "", []byte(`{"request_id":"big","profile_id":"p","token":"`+strings.Repeat("a", 100<<10)+`"}`))
	send(a.env.Subject("attest", "requests", "shop"), "", js(map[string]any{"request_id": "shop-1", "profile_id": a.profile, "token": a.token()}))
	huge := &nats.Msg{Subject: subject, Data: bytes.Repeat([]byte("x"), 2<<20), Header: nats.Header{}}
	if _, err := a.env.JS.PublishMsg(context.Background(), huge); err == nil {
		t.Fatal("a 2 MiB request was stored")
	}
	if len(seqs) != 8 {
		t.Fatalf("%d sequences stored, want 8 (the duplicate Nats-Msg-Id and the 2 MiB payload get none)", len(seqs))
	}
	a.settle()
	r := a.report(0)
	if r.Checked != 8 || r.OK != 8 || r.LastSeq != seqs[len(seqs)-1] || r.Failed() {
		t.Fatalf("every sequence should have one event: %+v", r)
	}

	// Forged events: a second event for the first request's sequence, and
	// one for a sequence the stream never had.
	forge := func(id string, seq uint64) {
		t.Helper()
		data := js(map[string]any{"request_id": "atk", "stream": "TAT_ATTEST", "stream_seq": seq, "status_code": 400, "error_type": "invalid_request"})
		ev := js(map[string]any{"specversion": "1.0", "id": id, "source": "tat/worker", "type": "tat.attest.failed",
			"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json", "data": json.RawMessage(data)})
		if _, err := a.env.JS.Publish(context.Background(), a.env.Subject("events", "attest", "failed"), ev); err != nil {
			t.Fatal(err)
		}
	}
	forge("evt-forged-1", seqs[0])
	forge("evt-forged-2", 1000)
	out := a.ctl(1, "audit", "check")
	for _, want := range []string{
		fmt.Sprintf("seq %d doubled: 2 events:", seqs[0]), "evt-forged-1 tat.attest.failed",
		"seq 1000 unknown: the stream never had it, yet evt-forged-2 tat.attest.failed", "1 doubled, 1 unknown; 0 events unreadable: FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the check does not say %q:\n%s", want, out)
		}
	}
}

// TestAuditUsage: the audit commands' usage errors exit 2 before any
// connection.
func TestAuditUsage(t *testing.T) {
	t.Setenv("TAT_NATS_URL", "nats://127.0.0.1:1")
	for _, args := range [][]string{
		{"audit"},
		{"audit", "check", "-stream", "events"},
		{"audit", "check", "-since", "1h", "-from-seq", "3"},
		{"audit", "check", "-from-seq", "5", "-to-seq", "4"},
		{"audit", "check", "-since", "yesterday"},
		{"audit", "check", "-since", "1h", "-until", "2h"},
		{"audit", "summary", "-until", "soon"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestAuditProgressOnlyOnATerminal: progress lines go to a terminal only;
// a pipe or a file gets nothing.
func TestAuditProgressOnlyOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	p.report("reading TAT_EVENTS", 1, 2)
	p.clear()
	if buf.Len() != 0 {
		t.Fatalf("progress written to a buffer: %q", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p = newProgress(f)
	p.report("reading TAT_EVENTS", 1, 2)
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Fatal("progress written to a regular file")
	}
	// What a terminal gets: one line rewritten in place, then cleared.
	tty := &progress{w: &buf}
	tty.report("reading TAT_EVENTS", 5, 9)
	tty.clear()
	if got := buf.String(); got != "\r\x1b[Kreading TAT_EVENTS: 5 of 9\r\x1b[K" {
		t.Fatalf("terminal output %q", got)
	}
}

// TestWriteReportCountsUnreadableEvents: the text report counts the
// events the audit could not read in its result line, fails on them, and
// prints the note that names them.
func TestWriteReportCountsUnreadableEvents(t *testing.T) {
	r := audit.Report{Stream: "TAT_ATTEST", FromSeq: 1, ToSeq: 2, LastSeq: 2, EventsRead: 3, Checked: 2, OK: 2,
		Unreadable: 1, UnreadableEvents: []audit.UnreadableEvent{{EventsSeq: 7, Why: "no id or type"}},
		Notes: []string{"1 events could not be read: events seq 7 (no id or type)"}}
	var b strings.Builder
	if err := writeReport(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"result: 2 checked: 2 ok, 0 pending, 0 lost, 0 doubled, 0 unknown; 1 events unreadable: FAILED", "note: 1 events could not be read"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
