// Package deploy_test checks what ships for deployment: compose.yaml, the
// NATS server configuration under deploy/nats, and scripts/dev-pki.sh.
package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tat-worker/attest/worker/natsconn"
	"github.com/tat-worker/attest/worker/workertest"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		EnvFile     []string          `yaml:"env_file"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeRunsTheLockedDownBus: compose.yaml parses (docker compose is
// not on every machine that runs the tests) and runs the shipped NATS
// configuration with the development PKI, and workers that log in as the
// worker identity over TLS with the reply settings the bus tests use.
func TestComposeRunsTheLockedDownBus(t *testing.T) {
	b, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := c.Services[n]
		if !ok {
			t.Fatalf("no service %s", n)
		}
		if !slices.Equal(s.Command, []string{"-c", "/etc/nats/nats.conf", "-n", n}) {
			t.Errorf("%s runs %v, not the shipped configuration", n, s.Command)
		}
		if !slices.Contains(s.Volumes, "./deploy/nats:/etc/nats:ro") || !slices.Contains(s.Volumes, "./deploy/dev/nats:/etc/nats/pki:ro") ||
			!slices.Contains(s.EnvFile, "deploy/dev/nats.env") {
			t.Errorf("%s does not mount the configuration and the PKI: %v %v", n, s.Volumes, s.EnvFile)
		}
	}
	workers := 0
	for name, s := range c.Services {
		if !strings.HasPrefix(name, "worker-") {
			continue
		}
		workers++
		env := s.Environment
		for _, u := range strings.Split(env["TAT_NATS_URL"], ",") {
			if !strings.HasPrefix(u, "tls://") {
				t.Errorf("%s: NATS URL %q is not tls://", name, u)
			}
		}
		if !slices.Contains(s.EnvFile, "deploy/dev/worker.env") || !slices.Contains(s.Volumes, "./deploy/dev/worker:/etc/tat/pki:ro") {
			t.Errorf("%s does not get the worker identity: %v %v", name, s.EnvFile, s.Volumes)
		}
		// The values worker/bus_test.go's shippedReplies gives the worker.
		if env["TAT_REPLY_PREFIXES"] != "_INBOX_admin.,_INBOX_app1.,_INBOX_app2.,_R_." ||
			env["TAT_APP_REPLY_PREFIXES"] != "app1=_INBOX_app1.,app2=_INBOX_app2." {
			t.Errorf("%s: reply settings %q %q", name, env["TAT_REPLY_PREFIXES"], env["TAT_APP_REPLY_PREFIXES"])
		}
		if !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/usr/local/bin/attestd", "healthcheck"}) {
			t.Errorf("%s: health check %v", name, s.Healthcheck.Test)
		}
		for k := range env {
			if strings.Contains(k, "PASSWORD") {
				t.Errorf("%s: a password in compose.yaml itself (%s)", name, k)
			}
		}
	}
	if workers < 2 {
		t.Fatalf("%d workers", workers)
	}
}

// readEnv reads a KEY=VALUE file as compose and `set -a; . FILE` do for
// the values dev-pki.sh writes (no spaces; single quotes kept literal).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q", path, line)
		}
		out[k] = strings.Trim(v, "'")
	}
	return out
}

// TestDevPKIWorksWithTheShippedConfiguration runs scripts/dev-pki.sh and
// starts the shipped server configuration on what it made (the files
// compose mounts, at their paths on this host): every identity connects
// with the settings the script wrote for it, and a stranger does not.
func TestDevPKIWorksWithTheShippedConfiguration(t *testing.T) {
	for _, tool := range []string{"bash", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	dir := filepath.Join(t.TempDir(), "dev")
	out, err := exec.Command("bash", "../scripts/dev-pki.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("dev-pki.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"ca.key.pem", "nats/server.key.pem", "worker/worker.key.pem", "clients/admin.key.pem", "nats.env", "worker.env"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, mounted := range []string{"nats", "worker"} {
		if _, err := os.Stat(filepath.Join(dir, mounted, "ca.key.pem")); err == nil {
			t.Fatalf("the CA's key is in %s/, which compose mounts", mounted)
		}
	}
	// Compose mounts dir/nats at /etc/nats/pki and dir/worker at /etc/tat/pki.
	host := strings.NewReplacer("/etc/nats/pki", filepath.Join(dir, "nats"), "/etc/tat/pki", filepath.Join(dir, "worker"))
	serverEnv := readEnv(t, filepath.Join(dir, "nats.env"))
	for k, v := range serverEnv {
		serverEnv[k] = host.Replace(v)
	}
	srv := workertest.StartShippedServer(t, serverEnv)
	for _, id := range []string{"worker", "admin", "app1", "app2", "auditor"} {
		env := readEnv(t, filepath.Join(dir, id+".env"))
		for k, v := range env {
			env[k] = host.Replace(v)
		}
		env["TAT_NATS_URL"] = srv.ClientURL()
		s, err := natsconn.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s.env: %v", id, err)
		}
		nc, err := s.Dial()
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		nc.Close()
		if id != "worker" && env["TAT_NATS_INBOX_PREFIX"] != "_INBOX_"+id {
			t.Errorf("%s: inbox prefix %q", id, env["TAT_NATS_INBOX_PREFIX"])
		}
	}
	if env := readEnv(t, filepath.Join(dir, "auditor.env")); env["TAT_NATS_JS_API_PREFIX"] != "$JS.TAT.API" {
		t.Errorf("auditor.env: TAT_NATS_JS_API_PREFIX %q", env["TAT_NATS_JS_API_PREFIX"])
	}
	// Running it again keeps the files (and so the CA every client trusts).
	before, _ := os.ReadFile(filepath.Join(dir, "nats.env"))
	if out, err := exec.Command("bash", "../scripts/dev-pki.sh", dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "keeping") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "nats.env")); string(after) != string(before) {
		t.Fatal("a second run changed the passwords")
	}
}
