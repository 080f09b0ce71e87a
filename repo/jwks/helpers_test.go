package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var b64url = base64.RawURLEncoding.EncodeToString

// jwk is one JSON Web Key as a test server publishes it, with the public key
// it encodes.
type jwk struct {
	fields map[string]any
	pub    crypto.PublicKey
}

// with returns a copy of k with extra members set (a nil value deletes).
func (k jwk) with(kv ...any) jwk {
	f := make(map[string]any, len(k.fields)+len(kv)/2)
	for name, v := range k.fields {
		f[name] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(f, kv[i].(string))
			continue
		}
		f[kv[i].(string)] = kv[i+1]
	}
	return jwk{fields: f, pub: k.pub}
}

func ecJWK(t testing.TB, kid string, curve elliptic.Curve) jwk {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	size := (len(point) - 1) / 2
	f := map[string]any{
		"kty": "EC", "crv": curve.Params().Name,
		"x": b64url(point[1 : 1+size]), "y": b64url(point[1+size:]),
	}
	if kid != "" {
		f["kid"] = kid
	}
	return jwk{fields: f, pub: &k.PublicKey}
}

func rsaJWK(t testing.TB, kid string, bits int) jwk {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	f := map[string]any{
		"kty": "RSA", "n": b64url(k.N.Bytes()),
		"e": b64url(big.NewInt(int64(k.E)).Bytes()),
	}
	if kid != "" {
		f["kid"] = kid
	}
	return jwk{fields: f, pub: &k.PublicKey}
}

func edJWK(t testing.TB, kid string) jwk {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64url(pub)}
	if kid != "" {
		f["kid"] = kid
	}
	return jwk{fields: f, pub: pub}
}

func setJSON(t testing.TB, keys ...jwk) []byte {
	t.Helper()
	list := make([]map[string]any, len(keys))
	for i, k := range keys {
		list[i] = k.fields
	}
	b, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is an issuer's JWKS endpoint that a test rotates, slows and
// breaks. It counts every request it receives.
type jwksServer struct {
	t       testing.TB
	fetches atomic.Int64

	mu           sync.Mutex
	keys         []jwk
	status       int           // 0: 200
	cacheControl string        // Cache-Control header, if any
	delay        time.Duration // before answering
	hang         bool          // never answer (until the client gives up)
	body         []byte        // served instead of keys, if set
}

func newJWKSServer(t testing.TB, keys ...jwk) *jwksServer {
	return &jwksServer{t: t, keys: keys}
}

// update changes the server's behaviour under its lock.
func (s *jwksServer) update(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	keys, status, cc, delay, hang, body := s.keys, s.status, s.cacheControl, s.delay, s.hang, s.body
	s.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 && status != http.StatusOK {
		http.Error(w, "down", status)
		return
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	if body == nil {
		body = setJSON(s.t, keys...)
	}
	_, _ = w.Write(body)
}

// start serves s over real HTTP on loopback until the test ends.
func (s *jwksServer) start(t testing.TB) string {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}

// testTimeout bounds fetches that should succeed: generous, because tests
// run in parallel under -race on small machines.
const testTimeout = 10 * time.Second

// localFetcher fetches over real loopback HTTP, which only AllowLocal
// permits.
func localFetcher(timeout time.Duration) *Fetcher {
	return &Fetcher{Client: NewHTTPClient(ClientOptions{AllowLocal: true, Timeout: timeout})}
}

// handlerTransport serves requests from an http.Handler in memory, so that
// tests inside a synctest bubble use no network.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// memFetcher fetches from h in memory through the real Fetcher code.
func memFetcher(h http.Handler) *Fetcher {
	return &Fetcher{Client: &http.Client{Transport: handlerTransport{h}, Timeout: 5 * time.Second}}
}

// fakeClock is a manual clock for tests outside synctest.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// events records OnChange and OnFailure calls.
type events struct {
	mu       sync.Mutex
	changes  []change
	failures []error
}

type change struct {
	url            string
	added, removed []string
}

func (ev *events) onChange(url string, added, removed []string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.changes = append(ev.changes, change{url, added, removed})
}

func (ev *events) onFailure(_ string, err error) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.failures = append(ev.failures, err)
}

// waitFor waits until at least changes and failures were recorded: the
// callbacks run after waiting callers are released.
func (ev *events) waitFor(t testing.TB, changes, failures int) ([]change, []error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, f := ev.snapshot()
		if len(c) >= changes && len(f) >= failures {
			return c, f
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d changes and %d failures, want %d and %d", len(c), len(f), changes, failures)
		}
		time.Sleep(time.Millisecond)
	}
}

func (ev *events) snapshot() ([]change, []error) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]change(nil), ev.changes...), append([]error(nil), ev.failures...)
}
