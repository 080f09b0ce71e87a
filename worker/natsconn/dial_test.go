package natsconn_test

import (
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tat-worker/attest/worker/natsconn"
	"github.com/tat-worker/attest/worker/workertest"
)

// startServer starts a NATS server with one user (app1/secret) and, with a
// PKI, TLS required (and client certificates verified when verify is set).
func startServer(t *testing.T, pki *workertest.PKI, verify bool) string {
	t.Helper()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true,
		Users: []*natsserver.User{{Username: "app1", Password: secret}}}
	if pki != nil {
		cfg, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CaFile: pki.CA, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = cfg, true, verify, 2
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// TestWrongCredentialIsOneClearLine: a refused credential is a permanent
// error naming the setting to check, never quoting the password.
func TestWrongCredentialIsOneClearLine(t *testing.T) {
	t.Parallel()
	url := startServer(t, nil, false)
	hostPort := strings.TrimPrefix(url, "nats://")
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong password", map[string]string{"TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": "wrong-" + secret},
			"nats: authorization violation: check TAT_NATS_USER/TAT_NATS_PASSWORD"},
		{"wrong password in the URL", map[string]string{"TAT_NATS_URL": "nats://app1:wrong-" + secret + "@" + hostPort},
			"nats: authorization violation: check the user and password in TAT_NATS_URL"},
		{"no credential", map[string]string{},
			"nats: authorization violation: check the credential: the server wants one and none is given"},
	} {
		env := map[string]string{"TAT_NATS_URL": url}
		for k, v := range c.env {
			env[k] = v
		}
		s, err := load(env)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := s.Dial()
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", c.name)
		}
		if !natsconn.Permanent(err) || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %q (permanent %v), want %q", c.name, err, natsconn.Permanent(err), c.want)
		}
	}
	// The right one connects.
	s, _ := load(map[string]string{"TAT_NATS_URL": url, "TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret})
	nc, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// TestTLSFailuresNameTheSetting: an untrusted server certificate, a
// missing client certificate and TLS settings against a server without TLS
// are each one permanent line naming what to check.
func TestTLSFailuresNameTheSetting(t *testing.T) {
	t.Parallel()
	pki := workertest.NewPKI(t)
	other := workertest.NewPKI(t)
	cert, key := pki.Client("app1")
	strangerCert, strangerKey := other.Client("app1")
	verifying := startServer(t, pki, true)
	plain := startServer(t, nil, false)
	user := map[string]string{"TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"server signed by an unknown CA", map[string]string{"TAT_NATS_URL": verifying, "TAT_NATS_TLS_CA": other.CA, "TAT_NATS_TLS_CERT": cert, "TAT_NATS_TLS_KEY": key},
			"is not signed by the CA in TAT_NATS_TLS_CA"},
		{"no CA given", map[string]string{"TAT_NATS_URL": verifying, "TAT_NATS_TLS_CERT": cert, "TAT_NATS_TLS_KEY": key},
			"set TAT_NATS_TLS_CA"},
		{"no client certificate", map[string]string{"TAT_NATS_URL": verifying, "TAT_NATS_TLS_CA": pki.CA},
			"set TAT_NATS_TLS_CERT/TAT_NATS_TLS_KEY"},
		{"client certificate of another CA", map[string]string{"TAT_NATS_URL": verifying, "TAT_NATS_TLS_CA": pki.CA, "TAT_NATS_TLS_CERT": strangerCert, "TAT_NATS_TLS_KEY": strangerKey},
			"check TAT_NATS_TLS_CERT/TAT_NATS_TLS_KEY"},
		{"TLS against a server without it", map[string]string{"TAT_NATS_URL": plain, "TAT_NATS_TLS_CA": pki.CA},
			"the server does not offer TLS: check TAT_NATS_URL"},
	} {
		for k, v := range user {
			c.env[k] = v
		}
		s, err := load(c.env)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := s.Dial()
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", c.name)
			continue
		}
		if !natsconn.Permanent(err) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %q (permanent %v), want %q", c.name, err, natsconn.Permanent(err), c.want)
		}
	}
	s, _ := load(map[string]string{"TAT_NATS_URL": verifying, "TAT_NATS_TLS_CA": pki.CA, "TAT_NATS_TLS_CERT": cert, "TAT_NATS_TLS_KEY": key,
		"TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret})
	nc, err := s.Dial()
	if err != nil {
		t.Fatalf("the right settings: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("not TLS")
	}
	nc.Close()
}

func TestNoServerIsNotPermanent(t *testing.T) {
	t.Parallel()
	s, _ := load(map[string]string{"TAT_NATS_URL": "nats://127.0.0.1:1"})
	_, err := s.Dial()
	if err == nil || natsconn.Permanent(err) {
		t.Fatalf("got %v", err)
	}
}
