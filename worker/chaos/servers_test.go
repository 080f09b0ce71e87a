//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tat-worker/attest/worker/embedded"
)

// natsNode is an in-process NATS server with JetStream on a fixed address
// and store directory, so it can be stopped and started again as the same
// server.
type natsNode struct {
	t    *testing.T
	addr string
	dir  string
	mu   sync.Mutex
	ns   *embedded.NATS
}

func startNATSNode(t *testing.T) *natsNode {
	t.Helper()
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	n := &natsNode{t: t, addr: addr, dir: filepath.Join(t.TempDir(), "nats")}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsNode) url() string { return "nats://" + n.addr }

// start starts the server (again) on its address and directory.
func (n *natsNode) start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for {
		n.ns, err = embedded.StartNATS(embedded.NATSOptions{Addr: n.addr, StoreDir: n.dir, ServerName: "chaos-nats"})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the old listener may still be closing
	}
	if err != nil {
		n.t.Fatalf("start nats on %s: %v", n.addr, err)
	}
}

// stop shuts the server down and waits for it; a stopped server is left alone.
func (n *natsNode) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns = nil
	}
}

// ferretNode is an in-process FerretDB (SQLite) on a fixed address and
// directory, so it can be stopped and started again with its data.
type ferretNode struct {
	t    *testing.T
	addr string
	dir  string
	mu   sync.Mutex
	fe   *embedded.Ferret
}

func startFerretNode(t *testing.T) *ferretNode {
	t.Helper()
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	f := &ferretNode{t: t, addr: addr, dir: filepath.Join(t.TempDir(), "ferret")}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *ferretNode) uri() string { return "mongodb://" + f.addr + "/" }

func (f *ferretNode) start() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for {
		f.fe, err = embedded.StartFerret(f.addr, f.dir)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("start ferretdb on %s: %v", f.addr, err)
	}
}

func (f *ferretNode) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fe != nil {
		f.fe.Stop()
		f.fe = nil
	}
}

// natsCluster is three nats-server processes in one cluster with JetStream.
type natsCluster struct {
	t     *testing.T
	nodes []*clusterNode
}

type clusterNode struct {
	name    string
	port    string
	cport   string
	dir     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

func startNATSCluster(t *testing.T, size int) *natsCluster {
	t.Helper()
	bin := natsServerBinary(t)
	c := &natsCluster{t: t}
	base := t.TempDir()
	for i := range size {
		port := freePort(t)
		cport := freePort(t)
		c.nodes = append(c.nodes, &clusterNode{
			name: fmt.Sprintf("n%d", i+1), port: port, cport: cport,
			dir: filepath.Join(base, fmt.Sprintf("n%d", i+1)), logPath: filepath.Join(base, fmt.Sprintf("n%d.log", i+1)),
		})
	}
	var routes []string
	for _, n := range c.nodes {
		routes = append(routes, "nats://127.0.0.1:"+n.cport)
	}
	for _, n := range c.nodes {
		logf, err := os.Create(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		n.cmd = exec.Command(bin, "-js", "-sd", n.dir, "-a", "127.0.0.1", "-p", n.port,
			"-cluster", "nats://127.0.0.1:"+n.cport, "-routes", strings.Join(routes, ","),
			"--cluster_name", "c", "-n", n.name)
		n.cmd.Stdout, n.cmd.Stderr = logf, logf
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("start nats-server %s: %v", n.name, err)
		}
		n.done = make(chan struct{})
		go func(n *clusterNode, f *os.File) {
			_ = n.cmd.Wait()
			f.Close()
			close(n.done)
		}(n, logf)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("nats-server %s log (tail):\n%s", n.name, tail(n.logPath, 40))
			}
		}
	})
	return c
}

// urls lists every node's client URL, comma separated.
func (c *natsCluster) urls() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, "nats://127.0.0.1:"+n.port)
	}
	return strings.Join(us, ",")
}

func (c *natsCluster) node(name string) *clusterNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// kill sends SIGKILL and waits for the process to end.
func (n *clusterNode) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr[strings.LastIndex(addr, ":")+1:]
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ferretProc is FerretDB as a child process (./ferretd) on a fixed address
// and directory: it can be killed and started again with its data.
type ferretProc struct {
	t       *testing.T
	addr    string
	dir     string
	starts  int
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

func startFerretProc(t *testing.T) *ferretProc {
	t.Helper()
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	f := &ferretProc{t: t, addr: addr, dir: filepath.Join(t.TempDir(), "ferret")}
	f.start()
	t.Cleanup(func() {
		f.kill()
		if t.Failed() {
			t.Logf("ferretd log (tail):\n%s", tail(f.logPath, 20))
		}
	})
	return f
}

func (f *ferretProc) uri() string { return "mongodb://" + f.addr + "/" }

// start runs the process and waits until it accepts connections.
func (f *ferretProc) start() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	f.logPath = filepath.Join(filepath.Dir(f.dir), fmt.Sprintf("ferretd-%d.log", f.starts))
	logf, err := os.Create(f.logPath)
	if err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(ferretdBin, f.addr, f.dir)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			f.t.Fatalf("start ferretd: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		for {
			b, _ := os.ReadFile(f.logPath)
			if strings.Contains(string(b), "ready") {
				f.cmd, f.done = cmd, done
				go func() { <-done; logf.Close() }()
				return
			}
			select {
			case <-done:
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break // exited before ready: the port may still be held; try again
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("ferretd did not start on %s:\n%s", f.addr, tail(f.logPath, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL (a crash) and waits for it.
func (f *ferretProc) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd == nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.done
	f.cmd = nil
}
