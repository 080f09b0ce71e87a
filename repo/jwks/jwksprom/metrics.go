// Package jwksprom exposes a jwks.Cache to Prometheus. It is a separate
// package so that package jwks builds without the Prometheus client.
package jwksprom

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tat-worker/attest/repo/jwks"
)

// Metrics counts JWKS fetches and reports the age of each URL's keys. It
// implements jwks.Recorder: pass it as jwks.Config.Metrics, then Watch the
// cache so scrapes can read key ages with the cache's own clock.
type Metrics struct {
	fetches    *prometheus.CounterVec
	sharedHits prometheus.Counter
	state      *stateCollector
}

// NewMetrics registers on reg:
//
//	tat_jwks_fetches_total{result="ok"|"error"}   fetches from issuers
//	tat_jwks_shared_hits_total                    fetches avoided by the shared store
//	tat_jwks_keys_age_seconds{url}                age of the keys in use (URLs with keys; password redacted)
//	tat_jwks_consecutive_failures{url}            failed fetches since the last success
//
// It panics if a metric is already registered, like prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tat_jwks_fetches_total",
			Help: "JWKS fetches from issuers, by result (ok, error).",
		}, []string{"result"}),
		sharedHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tat_jwks_shared_hits_total",
			Help: "JWKS fetches made unnecessary by a fresh set in the shared store.",
		}),
		state: &stateCollector{
			age: prometheus.NewDesc("tat_jwks_keys_age_seconds",
				"Seconds since the keys in use for a JWKS URL were fetched.", []string{"url"}, nil),
			failures: prometheus.NewDesc("tat_jwks_consecutive_failures",
				"Failed fetches of a JWKS URL since its last success.", []string{"url"}, nil),
		},
	}
	m.fetches.WithLabelValues("ok")
	m.fetches.WithLabelValues("error")
	reg.MustRegister(m.fetches, m.sharedHits, m.state)
	return m
}

// Fetched counts one fetch; it implements jwks.Recorder.
func (m *Metrics) Fetched(_ string, err error) {
	if err != nil {
		m.fetches.WithLabelValues("error").Inc()
		return
	}
	m.fetches.WithLabelValues("ok").Inc()
}

// SharedUsed counts one shared-store hit; it implements jwks.Recorder.
func (m *Metrics) SharedUsed(string) { m.sharedHits.Inc() }

// Watch makes scrapes report the per-URL gauges of c. Watch each cache once;
// two watched caches must not hold the same URL, or a scrape fails with a
// duplicate series.
func (m *Metrics) Watch(c *jwks.Cache) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.caches = append(m.state.caches, c)
}

// stateCollector reads the watched caches at scrape time.
type stateCollector struct {
	age, failures *prometheus.Desc

	mu     sync.Mutex
	caches []*jwks.Cache
}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.age
	ch <- s.failures
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	caches := append([]*jwks.Cache(nil), s.caches...)
	s.mu.Unlock()
	for _, c := range caches {
		for _, st := range c.Statuses() {
			if !st.FetchedAt.IsZero() {
				ch <- prometheus.MustNewConstMetric(s.age, prometheus.GaugeValue, st.Age.Seconds(), jwks.Redact(st.URL))
			}
			ch <- prometheus.MustNewConstMetric(s.failures, prometheus.GaugeValue, float64(st.Failures), jwks.Redact(st.URL))
		}
	}
}

var _ jwks.Recorder = (*Metrics)(nil)
