package jwksprom

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tat-worker/attest/repo/jwks"
)

// fetchFunc adapts a function to jwks.KeyFetcher.
type fetchFunc func(ctx context.Context, url string) (jwks.FetchResult, error)

func (f fetchFunc) Fetch(ctx context.Context, url string) (jwks.FetchResult, error) {
	return f(ctx, url)
}

func testSet(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := k.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	return fmt.Appendf(nil, `{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":%q,"y":%q}]}`, enc(p[1:33]), enc(p[33:]))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	set := testSet(t)
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	fail := false
	fetcher := fetchFunc(func(context.Context, string) (jwks.FetchResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return jwks.FetchResult{}, errors.New("down")
		}
		keys, err := jwks.ParseJWKS(set)
		return jwks.FetchResult{Keys: keys, Raw: set}, err
	})

	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	shared := jwks.NewMemoryShared()
	a := jwks.NewCache(jwks.Config{Fetcher: fetcher, Now: clock, Shared: shared, Metrics: m})
	b := jwks.NewCache(jwks.Config{Fetcher: fetcher, Now: clock, Shared: shared, Metrics: m})
	m.Watch(a)

	ctx := t.Context()
	if err := a.Ensure(ctx, "https://a.example/jwks"); err != nil {
		t.Fatal(err)
	}
	if err := b.Ensure(ctx, "https://a.example/jwks"); err != nil { // from the shared store
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(90 * time.Second)
	fail = true
	mu.Unlock()
	if _, err := a.RefreshUnknownKID(ctx, "https://a.example/jwks"); err == nil {
		t.Fatal("want an error from the failed fetch")
	}

	got := gather(t, reg)
	want := map[string]float64{
		`tat_jwks_fetches_total{result="ok"}`:                         1,
		`tat_jwks_fetches_total{result="error"}`:                      1,
		`tat_jwks_shared_hits_total`:                                  1,
		`tat_jwks_keys_age_seconds{url="https://a.example/jwks"}`:     90,
		`tat_jwks_consecutive_failures{url="https://a.example/jwks"}`: 1,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
}

// gather flattens reg's metrics to "name{label="value"}" -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			if len(m.GetLabel()) > 0 {
				name += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						name += ","
					}
					name += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
				}
				name += "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}
