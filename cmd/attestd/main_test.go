package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/cmd/attestd/internal/inprocess"
	"github.com/tat-worker/attest/worker/embedded"
	"github.com/tat-worker/attest/worker/workertest"
)

// The tests run attestd as make run builds it, with the embedded servers
// (the test binary may link them; the production attestd does not).
func init() {
	startEmbeddedNATS, startEmbeddedFerret = inprocess.StartNATS, inprocess.StartFerret
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// captureLog sends attestd's log to a buffer until the test ends.
func captureLog(t *testing.T) *workertest.SyncBuffer {
	buf := &workertest.SyncBuffer{}
	logOutput = buf
	t.Cleanup(func() { logOutput = os.Stderr })
	return buf
}

// messages are the "message" fields of a JSON log, in order.
func messages(t *testing.T, log string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e.Message)
	}
	return out
}

// inOrder fails unless every one of want is in got, each after the one before.
func inOrder(t *testing.T, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, m := range got {
		if i < len(want) && m == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("log lacks %q after %q, in order; messages:\n%s", want[i], want[:i], strings.Join(got, "\n"))
	}
}

// waitReady polls /readyz on addr until it answers 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogSettings(t *testing.T) {
	for _, c := range []struct {
		level, format string
		bad           []string // settings the error must name
	}{
		{"", "", nil},
		{"debug", "console", nil},
		{"WARN", "json", nil},
		{"disabled", "", nil},
		{"verbose", "", []string{`TAT_LOG_LEVEL: "verbose" is not one of trace, debug, info, warn, error, fatal, panic, disabled`}},
		{"1", "", []string{`TAT_LOG_LEVEL: "1"`}},
		{"", "xml", []string{`TAT_LOG_FORMAT: "xml" is not json or console`}},
		{"loud", "text", []string{"TAT_LOG_LEVEL", "TAT_LOG_FORMAT"}},
	} {
		_, err := loadSettings(env(map[string]string{"TAT_LOG_LEVEL": c.level, "TAT_LOG_FORMAT": c.format}))
		if len(c.bad) == 0 {
			if err != nil {
				t.Errorf("level %q, format %q refused: %v", c.level, c.format, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("level %q, format %q accepted", c.level, c.format)
			continue
		}
		for _, want := range c.bad {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("level %q, format %q: error does not say %q:\n%v", c.level, c.format, want, err)
			}
		}
	}
}

// TestProductionBuildNeedsBothURLs runs attestd as make build builds it:
// without the embedded servers, a missing URL is one clear line, before
// anything starts.
func TestProductionBuildNeedsBothURLs(t *testing.T) {
	n, f := startEmbeddedNATS, startEmbeddedFerret
	startEmbeddedNATS, startEmbeddedFerret = nil, nil
	t.Cleanup(func() { startEmbeddedNATS, startEmbeddedFerret = n, f })
	for _, e := range []map[string]string{
		nil,
		{"TAT_NATS_URL": "nats://127.0.0.1:1"},
		{"TAT_MONGODB_URI": "mongodb://127.0.0.1:1/"},
	} {
		err := run(context.Background(), env(e))
		if err != errNoEmbedded {
			t.Errorf("%v: want %q, got %v", e, errNoEmbedded, err)
		}
	}
	if !strings.Contains(errNoEmbedded.Error(), "TAT_NATS_URL and TAT_MONGODB_URI") || !strings.Contains(errNoEmbedded.Error(), "-tags embedded") {
		t.Errorf("error does not say what to do: %v", errNoEmbedded)
	}
}

// TestShutdownOrder runs attestd on servers of its own (as in production),
// stops it, and checks the order the composition root promises: the
// worker's consumers drain, then the NATS connection drains, then the
// store closes.
func TestShutdownOrder(t *testing.T) {
	e := workertest.NewEnv(t)
	logs := captureLog(t)
	httpAddr, _ := embedded.FreeAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{"TAT_NATS_URL": e.NATSURL, "TAT_MONGODB_URI": e.MongoURI,
			"TAT_DATA_DIR": t.TempDir(), "TAT_HTTP_ADDR": httpAddr, "TAT_SHUTDOWN_TIMEOUT": "10s"}))
	}()
	waitReady(t, httpAddr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	got := messages(t, logs.String())
	inOrder(t, got, "worker ready", "draining", "stopped", "nats connection drained", "store closed")
	for _, m := range got {
		if strings.HasPrefix(m, "embedded") || strings.Contains(m, "not drained") || m == "nats disconnected" {
			t.Errorf("unexpected log message %q", m)
		}
	}
}

func TestSettingsReportEveryProblem(t *testing.T) {
	_, err := loadSettings(env(map[string]string{
		"TAT_CLOCK_SKEW": "soon", "TAT_WORKER_CONCURRENCY": "many", "TAT_JWKS_ALLOW_LOCAL": "perhaps",
		"TAT_SUBJECT_PREFIX": "bad prefix", "TAT_MASTER_KEY": "short", "TAT_LOG_FORMAT": "xml",
	}))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, name := range []string{"TAT_CLOCK_SKEW", "TAT_WORKER_CONCURRENCY", "TAT_JWKS_ALLOW_LOCAL", "TAT_SUBJECT_PREFIX", "TAT_MASTER_KEY", "TAT_LOG_FORMAT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	s, err := loadSettings(env(nil))
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	if s.Worker.SubjectPrefix != "tat" || s.Worker.ClockSkew != time.Minute || s.Worker.HTTPAddr != "127.0.0.1:8080" || s.DataDir != "./var" {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestTakenNATSPortIsOneClearLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = run(context.Background(), env(map[string]string{"TAT_EMBEDDED_NATS_ADDR": l.Addr().String(), "TAT_DATA_DIR": t.TempDir()}))
	if err == nil || !strings.Contains(err.Error(), "TAT_EMBEDDED_NATS_ADDR=") || strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("want one line naming the setting, got: %v", err)
	}
}

// TestEmbeddedDefaultServesAndPersists runs attestd as `make run` does
// (embedded NATS and FerretDB under a data dir), checks its endpoints, stops
// it, and starts it again on the same data: the session-signing key is kept.
func TestEmbeddedDefaultServesAndPersists(t *testing.T) {
	dir := t.TempDir()
	kid := func() string {
		natsAddr, _ := embedded.FreeAddr()
		mongoAddr, _ := embedded.FreeAddr()
		httpAddr, _ := embedded.FreeAddr()
		logs := captureLog(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, env(map[string]string{"TAT_DATA_DIR": dir, "TAT_EMBEDDED_NATS_ADDR": natsAddr,
				"TAT_EMBEDDED_MONGODB_ADDR": mongoAddr, "TAT_HTTP_ADDR": httpAddr}))
		}()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			// The embedded servers stop last, after the store is closed.
			inOrder(t, messages(t, logs.String()), "embedded NATS with JetStream started", "embedded FerretDB (SQLite) started",
				"stopped", "nats connection drained", "store closed", "embedded FerretDB stopped", "embedded NATS stopped")
		}()
		waitReady(t, httpAddr)
		for _, p := range []string{"/healthz", "/metrics"} {
			resp, err := http.Get("http://" + httpAddr + p)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v", p, err)
			}
			resp.Body.Close()
		}
		resp, err := http.Get("http://" + httpAddr + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		body := string(buf[:n])
		i := strings.Index(body, `"kid":"`)
		if i < 0 {
			t.Fatalf("jwks: %s", body)
		}
		return body[i : i+30]
	}
	first := kid()
	second := kid()
	if first != second {
		t.Fatalf("signing key not kept across restarts: %s vs %s", first, second)
	}
}
