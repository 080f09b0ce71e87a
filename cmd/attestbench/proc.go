package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tat-worker/attest/worker/embedded"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// cpuSeconds returns the user+system CPU time a process has used.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from the closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / clockTicks, nil
}

// rssBytes returns VmRSS of a process.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// loadAvg returns /proc/loadavg's first three fields, as uptime prints them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func freeAddr() string {
	a, err := embedded.FreeAddr()
	if err != nil {
		fatalf("free port: %v", err)
	}
	return a
}

// proc is a child process whose output is kept (the last lines) and
// scanned for a line of interest.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []string
	watch func(line string)
}

func startProc(name string, env []string, watch func(string), path string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), watch: watch}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 200 {
				p.lines = p.lines[len(p.lines)-100:]
			}
			w := p.watch
			p.mu.Unlock()
			if w != nil {
				w(line)
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := max(0, len(p.lines)-20)
	return strings.Join(p.lines[n:], "\n")
}

// stop sends SIGTERM and waits (then SIGKILL).
func (p *proc) stop(wait time.Duration) time.Duration {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return time.Since(start)
}

// waitReady polls url until it answers 200.
func waitReady(p *proc, url string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	c := &http.Client{Timeout: time.Second}
	for time.Since(start) < timeout {
		select {
		case <-p.done:
			return 0, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		default:
		}
		if r, err := c.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return time.Since(start), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not ready after %v:\n%s", p.name, timeout, p.tail())
}

// stackInfo is what `attestbench serve-stack` prints once its servers run.
type stackInfo struct {
	NATS    string `json:"nats"`
	MongoDB string `json:"mongodb"`
}

// serveStack runs the embedded NATS (JetStream) and FerretDB (SQLite) of
// worker/embedded in this process, so the worker under test is a process
// of its own (its CPU and memory are its own), and prints their URLs.
func serveStack(dir string) {
	ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: "127.0.0.1:0", StoreDir: dir + "/nats"})
	if err != nil {
		fatalf("nats: %v", err)
	}
	fe, err := embedded.StartFerret("127.0.0.1:0", dir+"/ferretdb")
	if err != nil {
		fatalf("ferretdb: %v", err)
	}
	b, _ := json.Marshal(stackInfo{NATS: ns.URL(), MongoDB: fe.URI()})
	fmt.Println(string(b))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fe.Stop()
	ns.Shutdown()
}

// startStack starts `attestbench serve-stack` and waits for its URLs.
func startStack(dir string) (*proc, stackInfo, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, stackInfo{}, err
	}
	got := make(chan stackInfo, 1)
	p, err := startProc("stack", os.Environ(), func(line string) {
		var si stackInfo
		if json.Unmarshal([]byte(line), &si) == nil && si.NATS != "" {
			select {
			case got <- si:
			default:
			}
		}
	}, self, "serve-stack", dir)
	if err != nil {
		return nil, stackInfo{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case si := <-got:
		return p, si, nil
	case <-p.done:
		return nil, stackInfo{}, fmt.Errorf("stack exited: %v\n%s", p.err, p.tail())
	case <-ctx.Done():
		p.stop(5 * time.Second)
		return nil, stackInfo{}, errors.New("stack did not start in 60s")
	}
}

// metric reads one unlabelled gauge from a Prometheus text endpoint.
func metric(url, name string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}
