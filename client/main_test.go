package client_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/client"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// One real worker (in-process NATS with JetStream, in-process FerretDB)
// serves every test and example of this package: starting one takes
// seconds, and every test uses ids and emails of its own.
var (
	env     *workertest.Env
	natsURL string
	// idp stands in for a partner's identity provider: it signs the
	// trusted tokens the examples and tests exchange.
	idp *workertest.Issuer
)

func TestMain(m *testing.M) {
	tb := &mainTB{name: "client-TestMain"}
	code := func() int {
		defer tb.cleanup()
		env = workertest.NewEnv(tb)
		// The tests' inboxes: the default, and the prefixes of the
		// application tests, which the worker must list to reply there.
		w := env.StartWorker(func(c *worker.Config) {
			c.ReplyPrefixes = []string{"_INBOX.", "_INBOX_app1.", "_INBOX_billing."}
		}, nil)
		natsURL = env.NATSURL
		idp = workertest.NewIssuer(tb, "https://idp.example.com/", "my-app")
		if err := setupExamples(env.NC); err != nil {
			tb.Fatalf("set up the examples: %v", err)
		}
		code := m.Run()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "worker logs (tail):\n%s\n", tail(w.Logs.String(), 8000))
		}
		return code
	}()
	os.Exit(code)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// mainTB is the testing.TB workertest needs, for TestMain, which has none:
// cleanups run (last first) when TestMain ends; a fatal error prints,
// cleans up and exits. The embedded testing.TB is nil: it only supplies the
// interface's private method, and every public method is defined here.
type mainTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	cleanups []func()
	dirs     int
	failed   bool
}

func (t *mainTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (t *mainTB) ArtifactDir() string { return t.TempDir() }
func (t *mainTB) Attr(key, value string) {
	fmt.Fprintf(os.Stderr, "%s: attr %s=%s\n", t.name, key, value)
}
func (t *mainTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}
func (t *mainTB) Error(args ...any) { t.Log(args...); t.Fail() }
func (t *mainTB) Errorf(format string, args ...any) {
	t.Logf(format, args...)
	t.Fail()
}
func (t *mainTB) Fail() { t.mu.Lock(); t.failed = true; t.mu.Unlock() }
func (t *mainTB) FailNow() {
	t.Fail()
	t.cleanup()
	fmt.Fprintf(os.Stderr, "%s: failed\n", t.name)
	os.Exit(1)
}
func (t *mainTB) Failed() bool      { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *mainTB) Fatal(args ...any) { t.Log(args...); t.FailNow() }
func (t *mainTB) Fatalf(format string, args ...any) {
	t.Logf(format, args...)
	t.FailNow()
}
func (t *mainTB) Helper()         {}
func (t *mainTB) Log(args ...any) { fmt.Fprintln(os.Stderr, append([]any{t.name + ":"}, args...)...) }
func (t *mainTB) Logf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, t.name+": "+f+"\n", a...)
}
func (t *mainTB) Name() string { return t.name }
func (t *mainTB) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	_ = os.Setenv(key, value)
	t.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}
func (t *mainTB) Chdir(dir string) {
	old, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(old) })
}
func (t *mainTB) Skip(args ...any)         { t.Fatal(append([]any{"skip in TestMain:"}, args...)...) }
func (t *mainTB) SkipNow()                 { t.Fatal("skip in TestMain") }
func (t *mainTB) Skipf(f string, a ...any) { t.Fatalf("skip in TestMain: "+f, a...) }
func (t *mainTB) Skipped() bool            { return false }
func (t *mainTB) Context() context.Context { return context.Background() }
func (t *mainTB) Output() io.Writer        { return os.Stderr }
func (t *mainTB) TempDir() string {
	dir, err := os.MkdirTemp("", "client-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// connect opens a NATS connection closed when the test ends.
func connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newClient returns a client on a fresh connection.
func newClient(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(connect(t), opts...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// testCtx is a context for one call.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixture is a profile trusting idp (JIT provisioning on) and one user of
// its own, made through the client.
type fixture struct {
	c       *client.Client
	profile string
	userID  string
	email   string
}

// newFixture applies a fresh profile and user; name makes their ids unique.
func newFixture(t testing.TB, c *client.Client) *fixture {
	t.Helper()
	ctx := testCtx(t)
	tag := uuid.NewString()[:8]
	f := &fixture{c: c, email: "ada-" + tag + "@example.com"}
	p, err := c.ApplyProfile(ctx, client.ProfileCommand{Profile: testProfile("profile-" + tag)})
	if err != nil {
		t.Fatalf("ApplyProfile: %v", err)
	}
	f.profile = p.Profile.ProfileID
	u, err := c.ApplyUser(ctx, client.UserCommand{User: client.UserSpec{
		UserID: "user-" + tag, Emails: []client.UserEmail{{Email: f.email, Verified: true}},
		Name: client.UserName{FirstName: "Ada"},
	}})
	if err != nil {
		t.Fatalf("ApplyUser: %v", err)
	}
	f.userID = u.User.UserID
	return f
}

// testProfile is a profile with id that trusts idp's key.
func testProfile(id string) client.ProfileSpec {
	return client.ProfileSpec{
		ProfileID: id, Name: "Test IdP", Issuer: idp.Iss, Audience: idp.Aud,
		PublicKeys:       []string{idp.PublicPEM()},
		AttributeMapping: client.AttributeMapping{Email: "email", TokenID: "jti", RoleIDs: "roles"},
		CanJITProvision:  true,
	}
}

// token mints a fresh trusted token for email (a new jti each time);
// claims add to or replace the defaults (nil removes one).
func token(email string, claims map[string]any) client.Secret {
	c := map[string]any{"email": email, "jti": uuid.NewString()}
	for k, v := range claims {
		c[k] = v
	}
	return client.NewSecret(idp.Token(c))
}

// attest exchanges a fresh token of the fixture's user for a session.
func (f *fixture) attest(t testing.TB, minutes int) *client.AttestResult {
	t.Helper()
	res, err := f.c.Attest(testCtx(t), client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: minutes})
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return res
}
