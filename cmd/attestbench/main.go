// Command attestbench measures the worker end to end, as a client would see
// it: it starts the real stack, drives it from this separate process with
// fresh ES256 tokens for distinct users, and writes a report (Markdown,
// with the reply-latency histogram as an SVG picture).
//
// One run reports: end-to-end throughput (attests that start a session),
// reply latency p50/p95/p99 at half that rate, the worker's CPU time per
// attest (from /proc/<pid>/stat), the single-core crypto ceiling (ES256
// verify + ES256 sign per second on one core) and the ratio of the two,
// resident memory per user+session (the worker's VmRSS before and after
// loading N users, divided by N), and the restart time with those users in
// the store.
//
// The stack is, by default, the production attestd as one process and the
// embedded NATS (JetStream) and FerretDB (SQLite) servers of
// worker/embedded in another (`attestbench serve-stack`), so the worker's
// CPU and memory are its own. -embedded runs attestd built with -tags
// embedded instead (everything in one process, as `make run` does);
// -nats and -mongodb use external servers.
//
//	go build -o bin/attestd ./cmd/attestd && go build -o bin/attestbench ./cmd/attestbench
//	bin/attestbench -attestd bin/attestd            # scripts/bench.sh, make bench
//
// The worker gets the caller's TAT_* variables (TAT_WORKER_CONCURRENCY,
// ...), except the ones the bench sets: addresses, data directory,
// database, subject prefix, master key, log level.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "attestbench: "+format+"\n", args...)
	os.Exit(1)
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

type options struct {
	attestd   string
	embedded  bool
	natsURL   string
	mongoURI  string
	users     int
	attests   int
	warmup    int
	inflight  int
	latencyS  float64
	rate      float64
	cryptoDur time.Duration
	outDir    string
	name      string
	restart   bool
	kill      bool
	label     string
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve-stack" {
		serveStack(os.Args[2])
		return
	}
	var o options
	flag.StringVar(&o.attestd, "attestd", "bin/attestd", "worker `binary` (with -embedded: one built with -tags embedded)")
	flag.BoolVar(&o.embedded, "embedded", false, "run the worker on its embedded servers, all in one process (as make run)")
	flag.StringVar(&o.natsURL, "nats", "", "external NATS `URL` (with -mongodb; default: servers started by the bench)")
	flag.StringVar(&o.mongoURI, "mongodb", "", "external MongoDB `URI`")
	flag.IntVar(&o.users, "users", 20000, "distinct users loaded (JIT) for the memory measure")
	flag.IntVar(&o.attests, "attests", 20000, "attests by known users in the throughput phase")
	flag.IntVar(&o.warmup, "warmup", 1000, "attests before anything is measured")
	flag.IntVar(&o.inflight, "inflight", 512, "requests outstanding in the closed-loop phases")
	flag.Float64Var(&o.latencyS, "latency-seconds", 10, "length of the open-loop latency phase at half the throughput")
	flag.Float64Var(&o.rate, "rate", 0, "requests per second of the latency phase (default: half the measured throughput); to compare latency at one rate")
	flag.DurationVar(&o.cryptoDur, "crypto", 2*time.Second, "time spent measuring the single-core crypto ceiling")
	flag.StringVar(&o.outDir, "out", "docs", "`directory` for the report (the folder of BENCHMARKS.md)")
	flag.StringVar(&o.name, "name", "bench-report", "report file `name` (without .md)")
	flag.BoolVar(&o.restart, "restart", true, "measure a restart with the loaded users in the store")
	flag.BoolVar(&o.kill, "kill", false, "measure recovery from SIGKILL: start a second worker, send at the latency phase's rate, kill the first in the middle (not with -embedded)")
	flag.StringVar(&o.label, "label", "", "a line of text for the report (what is being measured)")
	flag.Parse()
	if (o.natsURL == "") != (o.mongoURI == "") {
		fatalf("-nats and -mongodb go together")
	}
	rep := run(o)
	path := writeReport(o, rep)
	fmt.Printf("\nreport: %s\n", path)
}

// report is everything one run measured.
type report struct {
	Started      time.Time
	Host         string
	Binary       string
	Mode         string
	Settings     []string
	LoadStart    string
	LoadEnd      string
	CryptoVerify time.Duration // one ES256 verify
	CryptoSign   time.Duration // one ES256 sign
	FirstStart   time.Duration // empty store to ready
	Warmup       phaseResult
	Load         phaseResult // new users (JIT)
	Throughput   phaseResult // known users
	Latency      phaseResult // open loop at half the throughput
	RSSBefore    int64
	RSSAfter     int64
	// RSSEmpty is VmRSS once the first start (empty store) has settled;
	// RSSRestart once the restart (every user and session loaded from
	// the store, idle) has: the steady state a restarted worker keeps.
	RSSEmpty    int64
	RSSRestart  int64
	HeapEmpty   float64
	HeapRestart float64
	ViewUsers   int
	HeapBefore  float64 // live heap at the last GC (liveHeap)
	HeapAfter   float64
	Restart     time.Duration
	StopTime    time.Duration
	Kill        killResult
	ViewLoaded  string
	StoreCounts string
}

func (r report) cryptoPairsPerSec() float64 {
	return float64(time.Second) / float64(r.CryptoVerify+r.CryptoSign)
}

func run(o options) report {
	r := report{Started: time.Now().UTC(), Host: hostInfo(), Binary: binaryInfo(o.attestd), LoadStart: loadAvg()}
	run := strings.ReplaceAll(uuidShort(), "-", "")
	fmt.Printf("attestbench %s: load average %s\n", run, r.LoadStart)

	// The crypto ceiling first, before the stack runs.
	r.CryptoVerify, r.CryptoSign = cryptoCeiling(o.cryptoDur)
	fmt.Printf("crypto ceiling (one core): verify %.1f µs + sign %.1f µs = %.0f pairs/s\n",
		us(r.CryptoVerify), us(r.CryptoSign), r.cryptoPairsPerSec())

	dir, err := os.MkdirTemp("", "attestbench-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(dir)

	var stack *proc
	natsURL, mongoURI := o.natsURL, o.mongoURI
	r.Mode = "external servers"
	switch {
	case o.embedded:
		r.Mode = "embedded: attestd -tags embedded, worker + NATS + FerretDB in one process (CPU and memory are the three together)"
	case natsURL == "":
		r.Mode = "split: attestd (worker) in one process, NATS + FerretDB of worker/embedded in another"
		var si stackInfo
		stack, si, err = startStack(dir)
		if err != nil {
			fatalf("%v", err)
		}
		defer stack.stop(20 * time.Second)
		natsURL, mongoURI = si.NATS, si.MongoDB
	}

	prefix := "bench" + run[:8]
	httpAddr := freeAddr()
	env := workerEnv(o, dir, prefix, httpAddr, &natsURL, mongoURI)
	r.Settings = settingsOf(env)
	viewLine := make(chan string, 4)
	startWorker := func() *proc {
		p, err := startProc("attestd", env, func(line string) {
			if strings.Contains(line, `"view loaded"`) {
				select {
				case viewLine <- line:
				default:
				}
			}
		}, o.attestd)
		if err != nil {
			fatalf("%v", err)
		}
		return p
	}
	w := startWorker()
	readyURL := "http://" + httpAddr + "/readyz"
	if r.FirstStart, err = waitReady(w, readyURL, 120*time.Second); err != nil {
		fatalf("%v", err)
	}
	defer func() { w.stop(30 * time.Second) }()
	drainLine(viewLine)

	metricsURL := "http://" + httpAddr + "/metrics"
	settle()
	r.RSSEmpty, _ = rssBytes(w.pid())
	r.HeapEmpty = liveHeap(metricsURL)

	d, err := newDriver(natsURL, prefix, run)
	if err != nil {
		fatalf("nats: %v", err)
	}
	is := newIssuer()
	const profile = "bench-profile"
	rep, err := d.command(prefix+".profiles.commands", map[string]any{"change_id": "bench-profile-" + run, "op": "upsert", "profile": map[string]any{
		"profile_id": profile, "name": "bench", "issuer": is.iss, "audience": is.aud, "public_keys": []string{is.publicPEM()},
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}, "can_jit_provision": true}})
	if err != nil || rep["status_code"] != float64(200) {
		fatalf("profile: %v %v", err, rep)
	}

	measure := func(name string, f func() phaseResult) phaseResult {
		w0, _ := cpuSeconds(w.pid())
		s0 := 0.0
		if stack != nil {
			s0, _ = cpuSeconds(stack.pid())
		}
		d0, _ := cpuSeconds(os.Getpid())
		b0, _ := metric(metricsURL, "tat_store_insert_batches_total")
		n0, _ := metric(metricsURL, "tat_store_batched_inserts_total")
		l0 := loadAvg()
		res := f()
		b1, _ := metric(metricsURL, "tat_store_insert_batches_total")
		n1, _ := metric(metricsURL, "tat_store_batched_inserts_total")
		res.Batches, res.Batched = b1-b0, n1-n0
		res.LoadBefore, res.LoadAfter = l0, loadAvg()
		w1, _ := cpuSeconds(w.pid())
		res.WorkerCPU = w1 - w0
		if stack != nil {
			s1, _ := cpuSeconds(stack.pid())
			res.StackCPU = s1 - s0
		}
		d1, _ := cpuSeconds(os.Getpid())
		res.DriverCPU = d1 - d0
		printPhase(res)
		return res
	}

	// Users: 0..warmup-1 warm the worker up; warmup..warmup+users-1 are
	// the users whose memory is measured; the throughput and latency
	// phases attest again as those users (known, no provisioning).
	seq := func(from, n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = from + i%max(1, o.users)
		}
		return out
	}
	fmt.Printf("preparing %d warm-up and %d new-user tokens\n", o.warmup, o.users)
	warm := is.attestPayloads(run, profile, func() []int {
		out := make([]int, o.warmup)
		for i := range out {
			out[i] = -1 - i
		}
		return out
	}())
	load := is.attestPayloads(run, profile, seq(0, o.users))
	r.Warmup = measure("warm-up (new users, JIT)", func() phaseResult { return d.closedLoop("warm-up", warm, o.inflight, 5*time.Minute) })
	settle()
	r.RSSBefore, _ = rssBytes(w.pid())
	r.HeapBefore = liveHeap(metricsURL)
	r.Load = measure("new users (JIT user + session)", func() phaseResult {
		return d.closedLoop("new users", load, o.inflight, 10*time.Minute)
	})
	load = nil
	settle()
	r.RSSAfter, _ = rssBytes(w.pid())
	r.HeapAfter = liveHeap(metricsURL)
	fmt.Printf("worker VmRSS %s -> %s: %.0f bytes per user+session (%d users); live heap %.0f bytes per user+session\n",
		mib(r.RSSBefore), mib(r.RSSAfter), float64(r.RSSAfter-r.RSSBefore)/float64(o.users), o.users,
		(r.HeapAfter-r.HeapBefore)/float64(o.users))

	fmt.Printf("preparing %d known-user tokens\n", o.attests)
	known := is.attestPayloads(run, profile, seq(0, o.attests))
	r.Throughput = measure("known users (session start)", func() phaseResult {
		return d.closedLoop("known users", known, o.inflight, 10*time.Minute)
	})
	known = nil

	rate := r.Throughput.Rate / 2
	if o.rate > 0 {
		rate = o.rate
	}
	if rate > 0 {
		n := int(rate * o.latencyS)
		fmt.Printf("preparing %d tokens for %.0f requests/s over %.0f s\n", n, rate, o.latencyS)
		lat := is.attestPayloads(run, profile, seq(0, n))
		r.Latency = measure(fmt.Sprintf("latency at %.0f/s (open loop)", rate), func() phaseResult {
			return d.openLoop("latency", lat, rate, 2*time.Minute)
		})
	}
	if o.kill {
		if o.embedded {
			fmt.Println("kill phase skipped: with -embedded the servers die with the worker")
		} else {
			r.Kill = killPhase(o, d, is, run, profile, env, w, rate, seq)
			w = r.Kill.survivor
		}
	}
	d.nc.Close()

	if o.restart {
		r.StopTime = w.stop(60 * time.Second)
		w = startWorker()
		if r.Restart, err = waitReady(w, readyURL, 10*time.Minute); err != nil {
			fatalf("restart: %v", err)
		}
		select {
		case l := <-viewLine:
			var v struct {
				Profiles int `json:"profiles"`
				Users    int `json:"users"`
				Sessions int `json:"sessions"`
			}
			_ = json.Unmarshal([]byte(l), &v)
			r.ViewLoaded = fmt.Sprintf("%d users, %d sessions", v.Users, v.Sessions)
			r.ViewUsers = v.Users
		case <-time.After(5 * time.Second):
		}
		fmt.Printf("restart: stopped in %v, ready in %v (empty store: %v); view loaded %s\n",
			r.StopTime.Round(time.Millisecond), r.Restart.Round(time.Millisecond), r.FirstStart.Round(time.Millisecond), r.ViewLoaded)
		settle()
		r.RSSRestart, _ = rssBytes(w.pid())
		r.HeapRestart = liveHeap(metricsURL)
		if r.ViewUsers > 0 {
			fmt.Printf("after the restart, idle: worker VmRSS %s (empty store: %s): %.0f bytes per user; live heap %.0f bytes per user\n",
				mib(r.RSSRestart), mib(r.RSSEmpty), float64(r.RSSRestart-r.RSSEmpty)/float64(r.ViewUsers),
				(r.HeapRestart-r.HeapEmpty)/float64(r.ViewUsers))
		}
	}
	r.LoadEnd = loadAvg()
	return r
}

// liveHeap is the worker's live heap at its last GC, from the heap goal:
// next_gc = live × (1 + GOGC/100), GOGC as the worker runs it (100 unless
// it says otherwise; the embedded default lowers it).
func liveHeap(metricsURL string) float64 {
	next, err := metric(metricsURL, "go_memstats_next_gc_bytes")
	if err != nil {
		return 0
	}
	gogc, err := metric(metricsURL, "go_gc_gogc_percent")
	if err != nil || gogc <= 0 {
		gogc = 100
	}
	return next / (1 + gogc/100)
}

// settle lets the worker finish what the last phase left (acks, events
// applied by the feed) before memory is read.
func settle() { time.Sleep(3 * time.Second) }

func drainLine(c chan string) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func workerEnv(o options, dir, prefix, httpAddr string, natsURL *string, mongoURI string) []string {
	var env []string
	for _, kv := range os.Environ() {
		env = append(env, kv)
	}
	set := func(k, v string) { env = append(env, k+"="+v) }
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	set("TAT_MASTER_KEY", base64.StdEncoding.EncodeToString(key))
	set("TAT_HTTP_ADDR", httpAddr)
	set("TAT_SUBJECT_PREFIX", prefix)
	set("TAT_MONGODB_DATABASE", prefix)
	set("TAT_LOG_LEVEL", "info")
	set("TAT_DATA_DIR", filepath.Join(dir, "data"))
	if o.embedded {
		natsAddr, mongoAddr := freeAddr(), freeAddr()
		set("TAT_NATS_URL", "")
		set("TAT_MONGODB_URI", "")
		set("TAT_EMBEDDED_NATS_ADDR", natsAddr)
		set("TAT_EMBEDDED_MONGODB_ADDR", mongoAddr)
		*natsURL = "nats://" + natsAddr
	} else {
		set("TAT_NATS_URL", *natsURL)
		set("TAT_MONGODB_URI", mongoURI)
	}
	return env
}

// settingsOf lists the TAT_* settings the worker runs with that matter to
// performance (the others are the bench's plumbing).
func settingsOf(env []string) []string {
	last := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v
	}
	var out []string
	for _, k := range []string{"TAT_WORKER_CONCURRENCY", "TAT_STORE_BATCH_SIZE", "TAT_STORE_BATCH_DELAY", "TAT_ACK_WAIT", "GOMAXPROCS", "GOGC", "GOMEMLIMIT"} {
		if v := last[k]; v != "" {
			out = append(out, k+"="+v)
		}
	}
	if len(out) == 0 {
		out = append(out, "defaults")
	}
	return out
}

// cryptoCeiling times ES256 verify and sign of a JWS-sized input on one
// goroutine locked to one thread, by that thread's CPU time: what one core
// can do at most, per attest, for the trusted token's signature and the
// session JWT's.
func cryptoCeiling(d time.Duration) (verify, sign time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	input := []byte(strings.Repeat("eyJhbGciOiJFUzI1NiJ9.", 20))
	sum := sha256.Sum256(input)
	sig, _ := ecdsa.SignASN1(rand.Reader, k, sum[:])
	// Timed by the thread's CPU time, not the clock: other work on the
	// machine takes the core away now and then, which would count as
	// crypto time on a clock.
	timeIt := func(f func()) time.Duration {
		n, start, cpu0 := 0, time.Now(), threadCPU()
		for time.Since(start) < d/2 {
			for range 20 {
				f()
			}
			n += 20
		}
		return (threadCPU() - cpu0) / time.Duration(n)
	}
	verify = timeIt(func() {
		s := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(&k.PublicKey, s[:], sig) {
			fatalf("verify failed")
		}
	})
	sign = timeIt(func() {
		s := sha256.Sum256(input)
		if _, err := ecdsa.SignASN1(rand.Reader, k, s[:]); err != nil {
			fatalf("sign: %v", err)
		}
	})
	return verify, sign
}

// threadCPU is the CPU time of the calling thread (RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil {
		fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hostInfo() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d logical CPUs, %s %s/%s", model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func binaryInfo(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return path + " (no build info: " + err.Error() + ")"
	}
	rev, modified, tags := "unknown (no VCS stamp)", "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			if s.Value == "true" {
				modified = " with uncommitted changes"
			}
		case "-tags":
			tags = " -tags " + s.Value
		}
	}
	return fmt.Sprintf("%s (commit %s%s, %s%s)", path, rev, modified, bi.GoVersion, tags)
}

func printPhase(r phaseResult) {
	fmt.Printf("%-40s %6d ok %4d failed %4d missing in %7.2fs: %7.0f/s  p50 %6.1f ms p99 %7.1f ms  worker CPU %6.0f µs/attest  load %s -> %s\n",
		r.Name, r.OK, r.Failed, r.Missing, r.Elapsed.Seconds(), r.Rate,
		percentile(r.Latencies, 0.5), percentile(r.Latencies, 0.99), perAttest(r.WorkerCPU, r.OK), r.LoadBefore, r.LoadAfter)
	if r.FirstError != "" {
		fmt.Printf("  first failure: %s\n", r.FirstError)
	}
}

func perAttest(cpu float64, n int) float64 {
	if n == 0 {
		return math.NaN()
	}
	return cpu / float64(n) * 1e6
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func uuidShort() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
