//go:build chaos

package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// workerProc is one attestd child process, started and restarted under one
// name; each start writes its own log file.
type workerProc struct {
	t    *testing.T
	name string
	env  []string
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exit    error
	http    string
	starts  int
	logs    []string
	stopped bool
}

// newWorker prepares a worker process on the harness's servers; extra
// holds KEY=VALUE settings that override the defaults.
func (h *harness) newWorker(name string, extra ...string) *workerProc {
	h.t.Helper()
	dir := filepath.Join(h.dir, "worker-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"GORACE=halt_on_error=0 exitcode=66",
		"TAT_NATS_URL=" + h.natsURL,
		"TAT_MONGODB_URI=" + h.mongoURI,
		"TAT_MONGODB_DATABASE=" + h.database,
		"TAT_MASTER_KEY=" + h.masterKey,
		"TAT_DATA_DIR=" + filepath.Join(dir, "data"),
		"TAT_RETRY_BASE=50ms",
		"TAT_RETRY_MAX=1s",
		"TAT_ACK_WAIT=5s",
		"TAT_SHUTDOWN_TIMEOUT=10s",
		"TAT_LOG_LEVEL=warn",
	}
	env = append(env, extra...)
	w := &workerProc{t: h.t, name: name, env: env, dir: dir}
	h.workers = append(h.workers, w)
	h.t.Cleanup(w.cleanup)
	return w
}

// unset removes a setting of the worker's environment (one of newWorker's
// defaults), so that the next start uses the worker's own default.
func (w *workerProc) unset(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	env := w.env[:0]
	for _, kv := range w.env {
		if !strings.HasPrefix(kv, key+"=") {
			env = append(env, kv)
		}
	}
	w.env = env
}

// start runs a new process of the worker on a fresh HTTP port and waits
// until /readyz answers 200.
func (w *workerProc) start() {
	w.t.Helper()
	w.mu.Lock()
	if w.running() {
		w.mu.Unlock()
		w.t.Fatalf("worker %s: started while running", w.name)
	}
	w.starts++
	w.http = "127.0.0.1:" + freePort(w.t)
	logPath := filepath.Join(w.dir, fmt.Sprintf("attestd-%d.log", w.starts))
	logf, err := os.Create(logPath)
	if err != nil {
		w.mu.Unlock()
		w.t.Fatal(err)
	}
	cmd := exec.Command(attestdBin)
	cmd.Dir = w.dir
	cmd.Env = append(append([]string{}, w.env...), "TAT_HTTP_ADDR="+w.http)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		w.mu.Unlock()
		w.t.Fatalf("start worker %s: %v", w.name, err)
	}
	done := make(chan struct{})
	w.cmd, w.done, w.exit = cmd, done, nil
	w.logs = append(w.logs, logPath)
	go func() {
		err := cmd.Wait()
		logf.Close()
		w.mu.Lock()
		w.exit = err
		w.mu.Unlock()
		close(done)
	}()
	w.mu.Unlock()
	w.waitReady(90 * time.Second)
}

func (w *workerProc) running() bool {
	if w.done == nil {
		return false
	}
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// waitReady polls /readyz until 200; the process must stay up meanwhile.
func (w *workerProc) waitReady(timeout time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, _ := w.readyz()
		if code == http.StatusOK {
			return
		}
		select {
		case <-w.done:
			w.t.Fatalf("worker %s exited before ready (%v); log:\n%s", w.name, w.exitErr(), tail(w.lastLog(), 40))
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("worker %s not ready within %s (last /readyz %d); log:\n%s", w.name, timeout, code, tail(w.lastLog(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// readyz returns the status code of GET /readyz (0 when unreachable).
func (w *workerProc) readyz() (int, error) {
	w.mu.Lock()
	addr := w.http
	w.mu.Unlock()
	resp, err := httpClient.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// metric returns the sum of the samples of a Prometheus metric (0 when absent).
func (w *workerProc) metric(name string) (float64, error) {
	w.mu.Lock()
	addr := w.http
	w.mu.Unlock()
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// kill sends SIGKILL and waits for the process to end.
func (w *workerProc) kill() {
	w.t.Helper()
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.mu.Unlock()
	if cmd == nil || !w.running() {
		w.t.Fatalf("worker %s: kill while not running", w.name)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// term sends SIGTERM and waits up to timeout for the process to end; it
// returns how long that took and the exit error (nil for exit code 0).
func (w *workerProc) term(timeout time.Duration) (time.Duration, error) {
	w.t.Helper()
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.mu.Unlock()
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return time.Since(start), w.exitErr()
	case <-time.After(timeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return time.Since(start), fmt.Errorf("did not exit within %s after SIGTERM (killed)", timeout)
	}
}

func (w *workerProc) exitErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exit
}

func (w *workerProc) lastLog() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.logs) == 0 {
		return ""
	}
	return w.logs[len(w.logs)-1]
}

// cleanup kills the process if it still runs, fails the test on a data
// race or a panic in any of its logs, and shows the logs of a failed test.
func (w *workerProc) cleanup() {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.mu.Unlock()
	if cmd != nil && w.running() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	w.mu.Lock()
	logs := append([]string{}, w.logs...)
	w.mu.Unlock()
	keep := os.Getenv("CHAOS_LOG_DIR") // keep every worker log there, for debugging
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		s := string(b)
		if keep != "" {
			_ = os.MkdirAll(keep, 0o755)
			_ = os.WriteFile(filepath.Join(keep, w.t.Name()+"-"+w.name+"-"+filepath.Base(p)), b, 0o644)
		}
		if strings.Contains(s, "WARNING: DATA RACE") || strings.Contains(s, "panic:") {
			w.t.Errorf("worker %s: race or panic in %s:\n%s", w.name, filepath.Base(p), s)
			continue
		}
		if w.t.Failed() {
			w.t.Logf("worker %s log %s (tail):\n%s", w.name, filepath.Base(p), tail(p, 30))
		}
	}
}

// waitReadyz polls /readyz until it answers want, for at most timeout,
// and returns how long that took. The process must stay up meanwhile.
func (w *workerProc) waitReadyz(want int, timeout time.Duration) time.Duration {
	w.t.Helper()
	start := time.Now()
	last := 0
	for time.Since(start) < timeout {
		if !w.running() {
			w.t.Fatalf("worker %s exited (%v) while waiting for /readyz %d; log:\n%s", w.name, w.exitErr(), want, tail(w.lastLog(), 40))
		}
		code, _ := w.readyz()
		if code == want {
			return time.Since(start)
		}
		last = code
		time.Sleep(100 * time.Millisecond)
	}
	w.t.Fatalf("worker %s: /readyz did not answer %d within %s (last %d)", w.name, want, timeout, last)
	return 0
}

// holdReadyz requires /readyz to answer want on every poll for d.
func (w *workerProc) holdReadyz(want int, d time.Duration) {
	w.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !w.running() {
			w.t.Fatalf("worker %s exited (%v); log:\n%s", w.name, w.exitErr(), tail(w.lastLog(), 40))
		}
		if code, err := w.readyz(); code != want {
			w.t.Fatalf("worker %s: /readyz answered %d (%v), want %d", w.name, code, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
