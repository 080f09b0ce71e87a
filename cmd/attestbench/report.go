package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

func writeReport(o options, r report) string {
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		fatalf("%v", err)
	}
	svgName := o.name + "-latency.svg"
	if err := os.WriteFile(filepath.Join(o.outDir, svgName), []byte(histogramSVG(r.Latency)), 0o644); err != nil {
		fatalf("%v", err)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# attestbench report")
	p("")
	if o.label != "" {
		p("%s", o.label)
		p("")
	}
	p("- when: %s", r.Started.Format("2006-01-02 15:04 MST"))
	p("- machine: %s", r.Host)
	p("- load average (1, 5, 15 min): %s at start, %s at end (other work on the machine shares its cores)", r.LoadStart, r.LoadEnd)
	p("- worker: %s", r.Binary)
	p("- stack: %s", r.Mode)
	p("- worker settings: %s", strings.Join(r.Settings, " "))
	p("- command: `%s`", strings.Join(os.Args, " "))
	p("")
	tp := r.Throughput
	p("| measure | result |")
	p("|---|---|")
	p("| **end-to-end throughput**, known users: attests that start a session | **%.0f /s** (%d in %.1f s, %d in flight; %d failed, %d missing; load %s → %s) |",
		tp.Rate, tp.OK, tp.Elapsed.Seconds(), o.inflight, tp.Failed, tp.Missing, tp.LoadBefore, tp.LoadAfter)
	p("| end-to-end throughput, new users (JIT user, then session) | %.0f /s (%d in %.1f s; %d failed, %d missing; load %s → %s) |",
		r.Load.Rate, r.Load.OK, r.Load.Elapsed.Seconds(), r.Load.Failed, r.Load.Missing, r.Load.LoadBefore, r.Load.LoadAfter)
	lt := r.Latency
	if lt.Offered > 0 {
		p("| **reply latency** at %.0f /s (%s, open loop, %d requests) | **p50 %.1f ms, p95 %.1f ms, p99 %.1f ms**, max %.1f ms (%d failed, %d missing; load %s → %s) |",
			lt.Offered, rateWhy(o), lt.Requests, percentile(lt.Latencies, .5), percentile(lt.Latencies, .95), percentile(lt.Latencies, .99),
			percentile(lt.Latencies, 1), lt.Failed, lt.Missing, lt.LoadBefore, lt.LoadAfter)
	}
	p("| **worker CPU per attest** (throughput phase, /proc/<pid>/stat) | **%.0f µs** |", perAttest(tp.WorkerCPU, tp.OK))
	if tp.StackCPU > 0 {
		p("| NATS + FerretDB process CPU per attest | %.0f µs |", perAttest(tp.StackCPU, tp.OK))
		p("| whole stack CPU per attest (worker + servers) | %.0f µs (the machine's %d cores give at most %.0f attests/s at this cost) |",
			perAttest(tp.WorkerCPU+tp.StackCPU, tp.OK), numCPU(), float64(numCPU())*1e6/perAttest(tp.WorkerCPU+tp.StackCPU, tp.OK))
	}
	if tp.Batches > 0 {
		p("| store inserts per attest; documents per insertMany (throughput phase) | %.2f; %.1f (%.0f commands) |", tp.Batched/float64(max(tp.OK, 1)), tp.Batched/tp.Batches, tp.Batches)
	} else {
		p("| store inserts per attest; documents per insertMany | not reported (a worker without grouped inserts: one command per insert) |")
	}
	p("| load generator CPU per attest (this process; not part of the stack) | %.0f µs |", perAttest(tp.DriverCPU, tp.OK))
	p("| **single-core crypto ceiling**: ES256 verify + ES256 sign | **%.0f /s** (verify %.1f µs, sign %.1f µs) |",
		r.cryptoPairsPerSec(), us(r.CryptoVerify), us(r.CryptoSign))
	p("| throughput ÷ single-core crypto ceiling | %.2f |", tp.Rate/r.cryptoPairsPerSec())
	p("| worker CPU per attest ÷ crypto time per attest | %.1f× |", perAttest(tp.WorkerCPU, tp.OK)/us(r.CryptoVerify+r.CryptoSign))
	n := float64(o.users)
	p("| **resident memory per user+session** (worker VmRSS %s → %s over %d new users with one session each) | **%.0f bytes** |",
		mib(r.RSSBefore), mib(r.RSSAfter), o.users, float64(r.RSSAfter-r.RSSBefore)/n)
	if r.HeapAfter > 0 {
		p("| live heap per user+session (Go heap at the last GC, `go_memstats_next_gc_bytes`/(1+`go_gc_gogc_percent`/100), before → after) | %.0f bytes |", (r.HeapAfter-r.HeapBefore)/n)
	}
	if r.Restart > 0 {
		p("| restart: SIGTERM to exit | %.2f s |", r.StopTime.Seconds())
		p("| restart: start to ready, view loaded from the store (%s) | %.2f s (empty store: %.2f s) |", r.ViewLoaded, r.Restart.Seconds(), r.FirstStart.Seconds())
		users := float64(o.users + o.warmup)
		p("| restart time per 100,000 users (above, less the empty start, scaled) | %.1f s |", (r.Restart-r.FirstStart).Seconds()*100000/users)
		if r.ViewUsers > 0 && r.RSSRestart > 0 {
			vu := float64(r.ViewUsers)
			p("| resident memory per user after the restart, idle (worker VmRSS %s against %s after the first start on an empty store, over the view loaded: %s) | %.0f bytes |",
				mib(r.RSSRestart), mib(r.RSSEmpty), r.ViewLoaded, float64(r.RSSRestart-r.RSSEmpty)/vu)
			if r.HeapRestart > 0 {
				p("| live heap per user after the restart (as above, against the first start's) | %.0f bytes |", (r.HeapRestart-r.HeapEmpty)/vu)
			}
		}
	}
	if k := r.Kill; k.Ran {
		p("| **recovery from SIGKILL** (two workers, %d requests at %.0f /s, the first killed halfway; TAT_ACK_WAIT %s): kill to the last reply of a request sent before it | **%.2f s** (%d such requests, half within %.2f s; %d failed, %d missing; the survivor retried %.0f times; load %s) |",
			k.Requests, k.Rate, k.AckWait, k.Recovery.Seconds(), k.Held, k.Median.Seconds(), k.Failed, k.Missing, k.Retries, k.Load)
	}
	p("")
	p("Reply latency at %.0f /s, %s (log-scale buckets):", lt.Offered, rateWhy(o))
	p("")
	p("![reply latency histogram](%s)", svgName)
	p("")
	p("Phases (closed loop: %d requests outstanding; open loop: requests sent on a fixed schedule):", o.inflight)
	p("")
	p("| phase | ok | failed | missing | seconds | ok/s | p50 ms | p99 ms | worker CPU µs/attest | load before → after |")
	p("|---|---|---|---|---|---|---|---|---|---|")
	for _, ph := range []phaseResult{r.Warmup, r.Load, r.Throughput, r.Latency} {
		if ph.Requests == 0 {
			continue
		}
		p("| %s | %d | %d | %d | %.2f | %.0f | %.1f | %.1f | %.0f | %s → %s |", ph.Name, ph.OK, ph.Failed, ph.Missing, ph.Elapsed.Seconds(), ph.Rate,
			percentile(ph.Latencies, .5), percentile(ph.Latencies, .99), perAttest(ph.WorkerCPU, ph.OK), ph.LoadBefore, ph.LoadAfter)
	}
	for _, ph := range []phaseResult{r.Warmup, r.Load, r.Throughput, r.Latency} {
		if ph.FirstError != "" {
			p("")
			p("First failure in %s: `%s`", ph.Name, ph.FirstError)
		}
	}
	path := filepath.Join(o.outDir, o.name+".md")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fatalf("%v", err)
	}
	return path
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 1
	}
	return max(1, strings.Count(string(b), "\nprocessor")+boolInt(strings.HasPrefix(string(b), "processor")))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// histogramSVG draws the latency distribution: bars over log-scale buckets
// (four per doubling), with the p50, p95 and p99 marked.
func histogramSVG(r phaseResult) string {
	const (
		width, height          = 760.0, 360.0
		left, right, top, bott = 60.0, 20.0, 40.0, 50.0
		perDoubling            = 4
	)
	lat := r.Latencies
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	if len(lat) == 0 {
		fmt.Fprintf(&b, `<text x="20" y="40">no latencies measured</text></svg>`+"\n")
		return b.String()
	}
	lo := math.Floor(math.Log2(max(lat[0], 0.05)) * perDoubling)
	hi := math.Ceil(math.Log2(max(lat[len(lat)-1], 0.05))*perDoubling) + 1
	nb := int(hi - lo)
	counts := make([]int, nb)
	for _, v := range lat {
		i := int(math.Floor(math.Log2(max(v, 0.05))*perDoubling) - lo)
		counts[min(max(i, 0), nb-1)]++
	}
	maxC := 1
	for _, c := range counts {
		maxC = max(maxC, c)
	}
	plotW, plotH := width-left-right, height-top-bott
	x := func(ms float64) float64 { return left + (math.Log2(ms)*perDoubling-lo)/float64(nb)*plotW }
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="14">Reply latency, %d attests at %.0f/s (open loop); %d failed, %d missing</text>`+"\n",
		left, len(lat), r.Offered, r.Failed, r.Missing)
	for i, c := range counts {
		x0 := left + float64(i)/float64(nb)*plotW
		h := float64(c) / float64(maxC) * plotH
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7ab5"/>`+"\n", x0+0.5, top+plotH-h, plotW/float64(nb)-1, h)
	}
	// Axes, ticks at powers of two.
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, top+plotH)
	for e := math.Ceil(lo / perDoubling); e <= math.Floor((hi-1)/perDoubling)+1; e++ {
		ms := math.Pow(2, e)
		xx := x(ms)
		if xx < left || xx > left+plotW {
			continue
		}
		label := fmt.Sprintf("%g", ms)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="black"/>`+"\n", xx, top+plotH, xx, top+plotH+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", xx, top+plotH+18, label)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">milliseconds (log scale)</text>`+"\n", left+plotW/2, height-10)
	fmt.Fprintf(&b, `<text x="15" y="%.0f" transform="rotate(-90 15 %.0f)" text-anchor="middle">requests (max %d per bucket)</text>`+"\n", top+plotH/2, top+plotH/2, maxC)
	for _, q := range []struct {
		name  string
		v     float64
		color string
	}{{"p50", percentile(lat, .5), "#2a9d3a"}, {"p95", percentile(lat, .95), "#e08a00"}, {"p99", percentile(lat, .99), "#c0392b"}} {
		xx := x(max(q.v, 0.05))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="4 3"/>`+"\n", xx, top, xx, top+plotH, q.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="%s" text-anchor="start">%s %.1f ms</text>`+"\n", xx+3, top+12+float64(strings.Index("p50p95p99", q.name))*5, q.color, q.name, q.v)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func rateWhy(o options) string {
	if o.rate > 0 {
		return "the rate asked for with -rate"
	}
	return "half the throughput"
}
