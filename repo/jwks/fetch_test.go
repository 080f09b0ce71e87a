package jwks

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	key := ecJWK(t, "k1", elliptic.P256())
	srv := newJWKSServer(t, key)
	srv.cacheControl = "public, max-age=300"
	url := srv.start(t)

	res, err := localFetcher(testTimeout).Fetch(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 1 || res.Keys[0].KID != "k1" {
		t.Fatalf("keys = %+v", res.Keys)
	}
	if res.MaxAge != 300*time.Second {
		t.Errorf("MaxAge = %s, want 5m", res.MaxAge)
	}
	if !bytes.Equal(res.Raw, setJSON(t, key)) {
		t.Errorf("Raw = %s", res.Raw)
	}
}

func TestFetchFailures(t *testing.T) {
	t.Parallel()
	key := ecJWK(t, "k1", elliptic.P256())
	valid := setJSON(t, key)
	tests := []struct {
		name    string
		setup   func(s *jwksServer)
		maxBody int64
		check   func(t *testing.T, err error)
	}{
		{"status 500", func(s *jwksServer) { s.status = 500 }, 0, func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) || se.Status != 500 {
				t.Fatalf("err = %v, want *StatusError 500", err)
			}
		}},
		{"status 304 is not 200", func(s *jwksServer) { s.status = 304 }, 0, func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *StatusError", err)
			}
		}},
		{"body over the cap", func(s *jwksServer) {
			s.body = append(valid, bytes.Repeat([]byte(" "), 200)...)
		}, int64(len(valid)) + 100, func(t *testing.T, err error) {
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("err = %v, want ErrBodyTooLarge", err)
			}
		}},
		{"no usable key", func(s *jwksServer) { s.body = []byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`) }, 0,
			func(t *testing.T, err error) {
				if !errors.Is(err, ErrNoUsableKeys) {
					t.Fatalf("err = %v, want ErrNoUsableKeys", err)
				}
			}},
		{"hangs past the timeout", func(s *jwksServer) { s.hang = true }, 0, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				t.Fatalf("err = %v, want a timeout", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, key)
			tc.setup(srv)
			url := srv.start(t)
			timeout := testTimeout
			if tc.name == "hangs past the timeout" {
				timeout = 300 * time.Millisecond
			}
			f := localFetcher(timeout)
			f.MaxBody = tc.maxBody
			_, err := f.Fetch(t.Context(), url)
			tc.check(t, err)
		})
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func TestFetchBodyExactlyAtCap(t *testing.T) {
	t.Parallel()
	key := ecJWK(t, "k1", elliptic.P256())
	srv := newJWKSServer(t, key)
	url := srv.start(t)
	f := localFetcher(testTimeout)
	f.MaxBody = int64(len(setJSON(t, key)))
	if _, err := f.Fetch(t.Context(), url); err != nil {
		t.Fatalf("a body of exactly MaxBody bytes: %v", err)
	}
}

func TestFetchZeroValueIsStrict(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, ecJWK(t, "k1", elliptic.P256()))
	url := srv.start(t)
	var f Fetcher
	if _, err := f.Fetch(t.Context(), url); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("zero Fetcher on http loopback: err = %v, want ErrInsecureURL", err)
	}
	if srv.fetches.Load() != 0 {
		t.Fatal("the server was reached")
	}
}

func TestMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header []string
		want   time.Duration
	}{
		{nil, 0},
		{[]string{"public"}, 0},
		{[]string{"max-age=300"}, 300 * time.Second},
		{[]string{"public, max-age=60, must-revalidate"}, time.Minute},
		{[]string{"public", "Max-Age=120"}, 2 * time.Minute},
		{[]string{`max-age="90"`}, 90 * time.Second},
		{[]string{"max-age=0"}, time.Second},
		{[]string{"no-cache"}, time.Second},
		{[]string{"max-age=600, no-store"}, time.Second},
		{[]string{"max-age=abc"}, 0},
		{[]string{"max-age=-5"}, 0},
		{[]string{"max-age=99999999999999"}, 365 * 24 * time.Hour},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.header {
			h.Add("Cache-Control", v)
		}
		if got := maxAge(h); got != tc.want {
			t.Errorf("maxAge(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://issuer.example/jwks":         "https://issuer.example/jwks",
		"https://user:secret@issuer.example/": "https://user:xxxxx@issuer.example/",
		"https://[::1%zone/":                  "(unparsable url)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
