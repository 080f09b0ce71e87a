package worker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// jwksServer serves the public keys of its issuers and counts fetches; a
// test rotates it (SetKeys) or breaks it (SetStatus).
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	status  int
	fetches atomic.Int64
	failed  atomic.Int64 // fetches answered with an error status
}

func newJWKSServer(t *testing.T, issuers ...*workertest.Issuer) *jwksServer {
	s := &jwksServer{status: 200}
	s.SetKeys(issuers...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, keys := s.status, s.keys
		s.mu.Unlock()
		if status != 200 {
			s.failed.Add(1)
			w.WriteHeader(status)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) SetKeys(issuers ...*workertest.Issuer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, i := range issuers {
		s.keys = append(s.keys, i.JWK())
	}
}

func (s *jwksServer) SetStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func jwksConfig(c *worker.Config) {
	c.JWKSMinInterval = 200 * time.Millisecond
	c.JWKSWait = 700 * time.Millisecond
}

func createJWKSProfile(t *testing.T, env *workertest.Env, url string) string {
	t.Helper()
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{
		"change_id": "jwks-" + uuid.NewString(), "op": "upsert", "profile": map[string]any{
			"issuer": "https://idp.example.com/", "audience": "my-app", "jwks_url": url, "can_jit_provision": true,
			"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"},
		}})
	mustStatus(t, rep, 200)
	return rep["profile"].(map[string]any)["profile_id"].(string)
}

func attestWith(t *testing.T, env *workertest.Env, profile string, iss *workertest.Issuer) map[string]any {
	t.Helper()
	id := uuid.NewString()
	return env.Request(env.Subject("attest", "requests"), id, map[string]any{"request_id": id, "profile_id": profile,
		"token": iss.Token(map[string]any{"email": "jit-" + id[:8] + "@example.com", "jti": id})})
}

func TestJWKSRotationOutageAndEvents(t *testing.T) {
	env := workertest.NewEnv(t)
	env.StartWorker(jwksConfig, nil)
	k1 := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	k1.KID = "k1"
	srv := newJWKSServer(t, k1)
	profile := createJWKSProfile(t, env, srv.URL)
	mustStatus(t, attestWith(t, env, profile, k1), 200)

	// Rotation: the issuer publishes k2 and signs with it; the unknown kid
	// causes one refetch.
	k2 := workertest.NewIssuer(t, k1.Iss, k1.Aud)
	k2.KID = "k2"
	srv.SetKeys(k2)
	time.Sleep(250 * time.Millisecond) // past the minimum interval between fetches
	mustStatus(t, attestWith(t, env, profile, k2), 200)

	// Outage. A kid the last good keys lack makes the worker refetch
	// (the last fetch is past the minimum interval); the issuer answers
	// 500, so the worker could not check the token: 503 jwks_unavailable,
	// not 401.
	srv.SetStatus(500)
	time.Sleep(250 * time.Millisecond)
	failedBefore := srv.failed.Load()
	k3 := workertest.NewIssuer(t, k1.Iss, k1.Aud)
	k3.KID = "k3"
	rep := attestWith(t, env, profile, k3)
	if rep["status_code"] != float64(503) || rep["error_type"] != "jwks_unavailable" {
		t.Fatalf("unknown kid during outage: %v", rep)
	}
	if srv.failed.Load() == failedBefore {
		t.Fatal("the unknown kid caused no failed fetch: the outage was never reached")
	}
	// The worker has now seen the outage; a token with a known kid is still
	// accepted from the last good keys, whatever the issuer answers.
	mustStatus(t, attestWith(t, env, profile, k2), 200)

	var refreshed, failed int
	for _, e := range env.Events() {
		switch e.Type {
		case domain.EventJWKSRefreshed:
			refreshed++
		case domain.EventJWKSRefreshFailed:
			failed++
		}
	}
	if refreshed < 2 || failed < 1 {
		for _, e := range env.Events() {
			t.Logf("%s %s", e.Type, e.Data)
		}
		t.Fatalf("jwks events: %d refreshed, %d failed", refreshed, failed)
	}
}

func TestJWKSUnavailableIsOneOutcome(t *testing.T) {
	env := workertest.NewEnv(t)
	env.StartWorker(jwksConfig, nil)
	srv := newJWKSServer(t)
	srv.SetStatus(503)
	profile := createJWKSProfile(t, env, srv.URL)
	k := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	rep := attestWith(t, env, profile, k)
	if rep["status_code"] != float64(503) || rep["error_type"] != "jwks_unavailable" {
		t.Fatalf("reply %v", rep)
	}
	// The wrong issuer is refused before any fetch.
	before := srv.fetches.Load()
	other := workertest.NewIssuer(t, "https://evil.example.com/", "my-app")
	if rep := attestWith(t, env, profile, other); rep["error_type"] != "jwt_invalid_issuer" {
		t.Fatalf("wrong issuer: %v", rep)
	}
	if srv.fetches.Load() != before {
		t.Fatal("a token with the wrong issuer caused a JWKS fetch")
	}
}

func TestJWKSFleetSharesFetches(t *testing.T) {
	env := workertest.NewEnv(t)
	// The fleet's clock stands still during each flood, so "one fetch per
	// minimum interval" is counted by the clock, not by how fast this
	// machine runs the requests.
	clock := &testClock{t: time.Now().UTC()}
	slow := func(c *worker.Config) {
		jwksConfig(c)
		c.JWKSMinInterval = time.Minute
	}
	a := env.StartWorker(slow, clock.Now)
	b := env.StartWorker(slow, clock.Now)
	k1 := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	k1.KID = "k1"
	srv := newJWKSServer(t, k1)
	profile := createJWKSProfile(t, env, srv.URL)
	// The profile reaches both workers' views.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, okA := a.W.View().Profile(profile)
		_, okB := b.W.View().Profile(profile)
		if okA && okB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile not in both views: a=%v b=%v", okA, okB)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 20 {
		mustStatus(t, attestWith(t, env, profile, k1), 200)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("issuer saw %d fetches for two workers, want 1", n)
	}
	// A flood of unknown kids on both workers, past the minimum interval:
	// at most one refetch per worker while the interval lasts.
	clock.Advance(2 * time.Minute)
	for i := range 20 {
		bad2 := workertest.NewIssuer(t, k1.Iss, k1.Aud)
		bad2.KID = "unknown-" + uuid.NewString()[:6]
		rep := attestWith(t, env, profile, bad2)
		if rep["status_code"] != float64(401) {
			t.Fatalf("unknown kid %d: %v", i, rep)
		}
	}
	if n := srv.fetches.Load(); n > 3 || n < 2 {
		t.Fatalf("flood of unknown kids on two workers caused %d fetches in all, want 2 or 3 (one refetch per worker at most, at least one)", n)
	}
}
