package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/worker/audit"
)

// errAuditFailed ends an audit check that found a sequence lost, doubled
// or unknown: exit 1 (the report is on stdout).
var errAuditFailed = errors.New("the audit found sequences lost, doubled or unknown")

// auditWindow reads -since/-until and -from-seq/-to-seq: one kind of
// window, not both.
func auditWindow(since, until string, from, to uint64) (s, u time.Time, err error) {
	now := time.Now()
	if (since != "" || until != "") && (from != 0 || to != 0) {
		return s, u, usageErrorf("give -since/-until or -from-seq/-to-seq, not both")
	}
	if to != 0 && to < from {
		return s, u, usageErrorf("-to-seq %d is before -from-seq %d", to, from)
	}
	if since != "" {
		if s, err = parseSince(since, now); err != nil {
			return s, u, err
		}
	}
	if until != "" {
		if u, err = parseSince(until, now); err != nil {
			return s, u, usageErrorf("-until: %v", err)
		}
		if !s.IsZero() && !u.After(s) {
			return s, u, usageErrorf("-until must be after -since")
		}
	}
	return s, u, nil
}

// cmdAuditCheck walks a command stream and the events stream and reports
// every sequence not accounted for by exactly one event.
func cmdAuditCheck(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	stream := fs.String("stream", "attest", "the command stream `NAME` audited: attest (<PREFIX>_ATTEST) or admin (<PREFIX>_ADMIN)")
	since := fs.String("since", "", "check the sequences stored from a `TIME`: a duration ago (1h) or an RFC 3339 time")
	until := fs.String("until", "", "check the sequences stored before a `TIME` (default: up to the stream's last)")
	from := fs.Uint64("from-seq", 0, "check from stream sequence `N` on, strictly: none is taken as unaudited (default: 1, or the first sequence events name when older events have none)")
	to := fs.Uint64("to-seq", 0, "check up to stream sequence `N` (default: the stream's last)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	kind := audit.Kind(*stream)
	if kind != audit.Attest && kind != audit.Admin {
		return usageErrorf("-stream must be attest or admin, not %q", *stream)
	}
	s, u, err := auditWindow(*since, *until, *from, *to)
	if err != nil {
		return err
	}
	js, done, err := c.jetstream()
	if err != nil {
		return err
	}
	defer done()
	o := audit.Options{Kind: kind, Commands: c.g.streamName(strings.ToUpper(*stream)), Events: c.g.streamName("EVENTS"),
		FromSeq: *from, ToSeq: *to, Since: s, Until: u}
	p := newProgress(c.stderr)
	o.Progress = p.report
	r, err := audit.Check(c.ctx, js, o)
	p.clear()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%v: is attestd running against this server, with -prefix %s?", err, c.g.prefix)
	}
	if err != nil {
		return err
	}
	if c.g.json {
		err = printJSON(c.stdout, r)
	} else {
		err = writeReport(c.stdout, r)
	}
	if err != nil {
		return err
	}
	if r.Failed() {
		return errAuditFailed
	}
	return nil
}

// writeReport prints a check's report: a header, one line per sequence
// not accounted for, notes, and a result line.
func writeReport(w io.Writer, r audit.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "audit of %s: sequences %d-%d of %d; %d events read\n", r.Stream, r.FromSeq, r.ToSeq, r.LastSeq, r.EventsRead)
	if r.Unaudited > 0 {
		fmt.Fprintf(&b, "unaudited: %d sequences before seq %d: %s\n", r.Unaudited, r.FromSeq, r.UnauditedReason)
	}
	for _, f := range r.Findings {
		switch f.Kind {
		case audit.Pending:
			fmt.Fprintf(&b, "seq %d pending: no event yet, still in the stream\n", f.Seq)
		case audit.Lost:
			fmt.Fprintf(&b, "seq %d lost: no event, and no longer in the stream\n", f.Seq)
		case audit.Doubled:
			fmt.Fprintf(&b, "seq %d doubled: %d events: %s\n", f.Seq, len(f.Events), eventList(f.Events))
		case audit.Unknown:
			fmt.Fprintf(&b, "seq %d unknown: the stream never had it, yet %s names it\n", f.Seq, eventList(f.Events))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	verdict := "OK"
	if r.Failed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "result: %d checked: %d ok, %d pending, %d lost, %d doubled, %d unknown; %d events unreadable: %s\n",
		r.Checked, r.OK, r.Pending, r.Lost, r.Doubled, r.Unknown, r.Unreadable, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func eventList(evs []audit.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%s %s (events seq %d)", e.ID, e.Type, e.EventsSeq))
	}
	return strings.Join(parts, ", ")
}

// cmdAuditSummary prints the attest outcomes per profile, type and error
// type whose events were stored in a window.
func cmdAuditSummary(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	since := fs.String("since", "24h", "count events stored from a `TIME`: a duration ago (1h) or an RFC 3339 time")
	until := fs.String("until", "", "count events stored before a `TIME` (default: now)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	s, u, err := auditWindow(*since, *until, 0, 0)
	if err != nil {
		return err
	}
	js, done, err := c.jetstream()
	if err != nil {
		return err
	}
	defer done()
	p := newProgress(c.stderr)
	sum, err := audit.Summarize(c.ctx, js, c.g.streamName("EVENTS"), s, u, p.report)
	p.clear()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%v: is attestd running against this server, with -prefix %s?", err, c.g.prefix)
	}
	if err != nil {
		return err
	}
	if c.g.json {
		return printJSON(c.stdout, sum)
	}
	end := "now"
	if !u.IsZero() {
		end = u.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(c.stdout, "attest outcomes stored from %s to %s: %d outcomes, %d repeated (%d reusing an id for another request)\n",
		s.UTC().Format(time.RFC3339), end, sum.Outcomes, sum.Repeated, sum.DifferentRequests)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tOUTCOME\tERROR_TYPE\tCOUNT")
	for _, l := range sum.Lines {
		profile := l.ProfileID
		if profile == "" {
			profile = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", profile, strings.TrimPrefix(l.Type, "tat."), l.ErrorType, l.Count)
	}
	return tw.Flush()
}

// jetstream connects and returns a JetStream context (see jetStream) and
// what closes it. The audit reads streams directly, which the client does
// not: it works on stream sequences and messages still queued.
func (c *cli) jetstream() (jetstream.JetStream, func(), error) {
	cn, err := c.connect()
	if err != nil {
		return nil, nil, err
	}
	js, err := cn.jetStream()
	if err != nil {
		cn.nc.Close()
		return nil, nil, err
	}
	return js, cn.nc.Close, nil
}

// progress shows how far a long walk is on one line of a terminal's
// stderr; on anything else it shows nothing.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return &progress{w: w}
		}
	}
	return &progress{}
}

func (p *progress) report(stage string, done, total uint64) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	if total > 0 {
		fmt.Fprintf(p.w, "\r\x1b[K%s: %d of %d", stage, done, total)
	} else {
		fmt.Fprintf(p.w, "\r\x1b[K%s: %d", stage, done)
	}
	p.shown = true
}

func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}
