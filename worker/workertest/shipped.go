package workertest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/worker/natsconn"
)

// Identities are the users of the shipped permission model
// (deploy/nats/accounts.conf), each with the inbox prefix it must use.
var Identities = map[string]string{
	"worker":  "",
	"admin":   "_INBOX_admin",
	"app1":    "_INBOX_app1",
	"app2":    "_INBOX_app2",
	"auditor": "_INBOX_auditor",
}

// ShippedConfig is the path of deploy/nats/nats.conf, the server
// configuration compose.yaml runs.
func ShippedConfig() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "nats", "nats.conf")
}

// ShippedNATS is a NATS server started from the shipped configuration with
// a CA, certificates and passwords made for the test.
type ShippedNATS struct {
	Server    *natsserver.Server
	URL       string
	PKI       *PKI
	Passwords map[string]string // by identity
	t         testing.TB
}

// StartShippedNATS loads deploy/nats/nats.conf as compose does, with the
// environment it names (certificates, passwords) made for the test: see
// StartShippedServer.
func StartShippedNATS(t testing.TB) *ShippedNATS {
	t.Helper()
	return startShippedNATS(t, ShippedConfig())
}

// StartEditedShippedNATS is StartShippedNATS on a copy of deploy/nats whose
// accounts.conf edit has changed: a test of what one layer of the
// permission model holds when another is taken away. edit must change the
// file.
func StartEditedShippedNATS(t testing.TB, edit func(accounts string) string) *ShippedNATS {
	t.Helper()
	src, dir := filepath.Dir(ShippedConfig()), t.TempDir()
	for _, name := range []string{"nats.conf", "accounts.conf"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "accounts.conf" {
			edited := edit(string(b))
			if edited == string(b) {
				t.Fatal("the edit changed nothing in accounts.conf")
			}
			b = []byte(edited)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return startShippedNATS(t, filepath.Join(dir, "nats.conf"))
}

func startShippedNATS(t testing.TB, config string) *ShippedNATS {
	t.Helper()
	pki := NewPKI(t)
	s := &ShippedNATS{PKI: pki, Passwords: map[string]string{}, t: t}
	env := map[string]string{"NATS_SERVER_CERT": pki.ServerCert, "NATS_SERVER_KEY": pki.ServerKey, "NATS_CA": pki.CA}
	for id := range Identities {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		s.Passwords[id] = "pw-" + hex.EncodeToString(b)
		env["NATS_PASSWORD_"+upper(id)] = s.Passwords[id]
	}
	s.Server = startServer(t, config, env)
	s.URL = s.Server.ClientURL()
	return s
}

// StartShippedServer starts a NATS server from deploy/nats/nats.conf with
// env as the server's environment (NATS_SERVER_CERT, NATS_SERVER_KEY,
// NATS_CA, NATS_PASSWORD_<ID>), changing only what a test must: a free
// port on the loopback, no monitoring port, a temporary store, no
// cluster. It sets environment variables, so the calling test cannot be
// parallel.
func StartShippedServer(t testing.TB, env map[string]string) *natsserver.Server {
	t.Helper()
	return startServer(t, ShippedConfig(), env)
}

func startServer(t testing.TB, config string, env map[string]string) *natsserver.Server {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	opts, err := natsserver.ProcessConfigFile(config)
	if err != nil {
		t.Fatalf("load %s: %v", config, err)
	}
	opts.ServerName = "shipped-test"
	opts.Host, opts.Port = "127.0.0.1", natsserver.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = filepath.Join(t.TempDir(), "js")
	opts.Cluster = natsserver.ClusterOpts{}
	opts.Routes = nil
	opts.NoSigs, opts.NoLog = true, true
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server from the shipped configuration: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// Env returns the settings of identity id as its process would have them:
// the TAT_NATS_* variables (URL, user, password, CA, client certificate,
// inbox prefix).
func (s *ShippedNATS) Env(id string) map[string]string {
	cert, key := s.PKI.Client(id)
	return map[string]string{
		natsconn.EnvURL: s.URL, natsconn.EnvUser: id, natsconn.EnvPassword: s.Passwords[id],
		natsconn.EnvTLSCA: s.PKI.CA, natsconn.EnvTLSCert: cert, natsconn.EnvTLSKey: key,
		natsconn.EnvInboxPrefix: Identities[id],
	}
}

// Settings loads identity id's settings through natsconn.Load.
func (s *ShippedNATS) Settings(id string) natsconn.Settings {
	s.t.Helper()
	env := s.Env(id)
	st, err := natsconn.Load(func(k string) string { return env[k] })
	if err != nil {
		s.t.Fatalf("settings of %s: %v", id, err)
	}
	return st
}

// Connect connects as identity id; errs, when set, receives the
// connection's asynchronous errors (permission violations).
func (s *ShippedNATS) Connect(id string, errs chan<- error, opts ...nats.Option) *nats.Conn {
	s.t.Helper()
	if errs != nil {
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	}
	nc, err := s.Settings(id).Dial(append([]nats.Option{nats.Name(id)}, opts...)...)
	if err != nil {
		s.t.Fatalf("connect as %s: %v", id, err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}
