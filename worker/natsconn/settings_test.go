package natsconn_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/tat-worker/attest/worker/natsconn"
	"github.com/tat-worker/attest/worker/workertest"
)

const secret = "s3cret-Pa55word"

func load(env map[string]string) (natsconn.Settings, error) {
	return natsconn.Load(func(k string) string { return env[k] })
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// userSeed returns a user nkey seed.
func userSeed(t *testing.T) []byte {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

func TestNoSettingIsNoOption(t *testing.T) {
	t.Parallel()
	s, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := s.Options()
	if err != nil || len(opts) != 0 || !s.Empty() {
		t.Fatalf("options %d, err %v, empty %v", len(opts), err, s.Empty())
	}
}

func TestGoodSettingsLoad(t *testing.T) {
	t.Parallel()
	pki := workertest.NewPKI(t)
	cert, key := pki.Client("app1")
	seed := userSeed(t)
	creds := write(t, "app.creds", "-----BEGIN NATS USER JWT-----\neyJhbGciOiJlZDI1NTE5In0.eyJzdWIiOiJVIn0.c2ln\n------END NATS USER JWT------\n\n"+
		"-----BEGIN USER NKEY SEED-----\n"+string(seed)+"\n------END USER NKEY SEED------\n")
	nkey := write(t, "app.nk", string(seed)+"\n")
	for name, env := range map[string]map[string]string{
		"user and password": {"TAT_NATS_URL": "tls://nats-1:4222,tls://nats-2:4222", "TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret,
			"TAT_NATS_TLS_CA": pki.CA, "TAT_NATS_TLS_CERT": cert, "TAT_NATS_TLS_KEY": key, "TAT_NATS_INBOX_PREFIX": "_INBOX_app1"},
		"password in the URL": {"TAT_NATS_URL": "nats://app1:" + secret + "@127.0.0.1:4222", "TAT_NATS_TLS_CA": pki.CA},
		"url without scheme":  {"TAT_NATS_URL": "127.0.0.1:4222"},
		"credentials file":    {"TAT_NATS_CREDS": creds},
		"nkey seed":           {"TAT_NATS_NKEY": nkey, "TAT_NATS_TLS_CA": pki.CA},
	} {
		s, err := load(env)
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		if _, err := s.Options(); err != nil {
			t.Errorf("%s: options: %v", name, err)
		}
		if strings.Contains(s.String(), secret) || strings.Contains(fmt.Sprintf("%v %+v %#v", s, s, s), secret) {
			t.Errorf("%s: the password is printed: %v", name, s)
		}
	}
}

// TestBadSettingsAreOneClearErrorEach: every problem is named by its
// setting, all at once, and no error quotes a password or a file's content.
func TestBadSettingsAreOneClearErrorEach(t *testing.T) {
	t.Parallel()
	pki := workertest.NewPKI(t)
	cert, _ := pki.Client("app1")
	_, otherKey := pki.Client("app2")
	seed := string(userSeed(t))
	notPEM := write(t, "ca.pem", "not a certificate "+secret)
	badCreds := write(t, "bad.creds", "-----BEGIN USER NKEY SEED-----\n"+seed+"\n------END USER NKEY SEED------\n")
	badSeed := write(t, "bad.nk", "SUAnotaseed\n")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"certificate and key of two identities", map[string]string{"TAT_NATS_TLS_CERT": cert, "TAT_NATS_TLS_KEY": otherKey},
			[]string{"TAT_NATS_TLS_CERT/TAT_NATS_TLS_KEY", "private key does not match public key"}},
		{"certificate without key", map[string]string{"TAT_NATS_TLS_CERT": cert}, []string{"TAT_NATS_TLS_KEY: must be set with TAT_NATS_TLS_CERT"}},
		{"key without certificate", map[string]string{"TAT_NATS_TLS_KEY": otherKey}, []string{"TAT_NATS_TLS_CERT: must be set with TAT_NATS_TLS_KEY"}},
		{"CA file that holds no certificate", map[string]string{"TAT_NATS_TLS_CA": notPEM}, []string{"TAT_NATS_TLS_CA", "holds no PEM certificate"}},
		{"missing CA file", map[string]string{"TAT_NATS_TLS_CA": missing}, []string{"TAT_NATS_TLS_CA", "no such file"}},
		{"missing certificate file", map[string]string{"TAT_NATS_TLS_CERT": missing, "TAT_NATS_TLS_KEY": otherKey}, []string{"TAT_NATS_TLS_CERT/TAT_NATS_TLS_KEY", "no such file"}},
		{"credentials without a JWT", map[string]string{"TAT_NATS_CREDS": badCreds}, []string{"TAT_NATS_CREDS", "no user JWT"}},
		{"missing credentials file", map[string]string{"TAT_NATS_CREDS": missing}, []string{"TAT_NATS_CREDS", "no such file"}},
		{"seed that is not one", map[string]string{"TAT_NATS_NKEY": badSeed}, []string{"TAT_NATS_NKEY", "is not a user nkey seed file"}},
		{"password without user", map[string]string{"TAT_NATS_PASSWORD": secret}, []string{"TAT_NATS_USER: must be set with TAT_NATS_PASSWORD"}},
		{"user without password", map[string]string{"TAT_NATS_USER": "app1"}, []string{"TAT_NATS_PASSWORD: must be set with TAT_NATS_USER"}},
		{"two credentials", map[string]string{"TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret, "TAT_NATS_NKEY": write(t, "u.nk", seed)},
			[]string{"give one of", "TAT_NATS_NKEY and TAT_NATS_USER/TAT_NATS_PASSWORD"}},
		{"user in the URL and in the settings", map[string]string{"TAT_NATS_URL": "nats://app1:" + secret + "@h:4222", "TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret},
			[]string{"give one of", "user or token in TAT_NATS_URL"}},
		{"URL that does not parse", map[string]string{"TAT_NATS_URL": "nats://app1:" + secret + "@h:4222,nats://%zz"}, []string{"TAT_NATS_URL: URL number 2 is not a URL"}},
		{"inbox prefix with a wildcard", map[string]string{"TAT_NATS_INBOX_PREFIX": "_INBOX_app1.>"}, []string{"TAT_NATS_INBOX_PREFIX"}},
		{"inbox prefix ending in a dot", map[string]string{"TAT_NATS_INBOX_PREFIX": "_INBOX_app1."}, []string{"TAT_NATS_INBOX_PREFIX"}},
	} {
		_, err := load(c.env)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not say %q:\n%v", c.name, w, err)
			}
		}
		for _, leak := range []string{secret, seed, "BEGIN"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error quotes a secret or a file: %v", c.name, err)
			}
		}
	}
	// All at once.
	_, err := load(map[string]string{"TAT_NATS_TLS_CA": notPEM, "TAT_NATS_USER": "x", "TAT_NATS_CREDS": missing})
	for _, name := range []string{"TAT_NATS_TLS_CA", "TAT_NATS_PASSWORD", "TAT_NATS_CREDS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// TestOptionsRecheckAReplacedURL: attestctl's -nats flag replaces the URL
// after Load; a user in it next to TAT_NATS_USER is still refused.
func TestOptionsRecheckAReplacedURL(t *testing.T) {
	t.Parallel()
	s, err := load(map[string]string{"TAT_NATS_USER": "app1", "TAT_NATS_PASSWORD": secret})
	if err != nil {
		t.Fatal(err)
	}
	s.URL = "nats://other:" + secret + "@h:4222"
	_, err = s.Options()
	if err == nil || !strings.Contains(err.Error(), "give one of") || strings.Contains(err.Error(), secret) {
		t.Fatalf("options: %v", err)
	}
	if _, err := s.Dial(); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("dial: %v", err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                             "nats://127.0.0.1:4222",
		"nats://alice:s3cret@host:4222":                     "nats://alice:REDACTED@host:4222",
		"nats://tok3n@host:4222":                            "nats://REDACTED@host:4222",
		"nats://a:p1@h1:4222, nats://h2:4222,tls://b:p2@h3": "nats://a:REDACTED@h1:4222,nats://h2:4222,tls://b:REDACTED@h3",
		"alice:s3cret@host:4222":                            "alice:REDACTED@host:4222",
		"nats://alice:s3%zzcret@host":                       "(unparsable URL)",
	} {
		if got := natsconn.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPermanentErrors(t *testing.T) {
	t.Parallel()
	if natsconn.Permanent(errors.New("nats: no servers available for connection")) {
		t.Error("no servers is not permanent: the server may not be up yet")
	}
}
