package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	outcomes     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	replyRefused prometheus.Counter
	sessionCalls *prometheus.CounterVec
	// eventsRefused counts messages refused for where they came from:
	// events not signed by a worker, events delivered into a command
	// stream.
	eventsRefused *prometheus.CounterVec
	// jwksRefused counts shared JWK set entries not signed by a worker.
	jwksRefused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, view func() (int, int, int)) *metrics {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tat_outcomes_total", Help: "Command outcomes by kind, event type and error type.",
		}, []string{"kind", "event", "error_type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tat_command_seconds", Help: "Time from delivery to acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tat_retries_total", Help: "Deliveries answered with NakWithDelay after a transient fault.",
		}, []string{"kind"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tat_dead_letters_total", Help: "Commands that exhausted their deliveries.",
		}, []string{"kind"}),
		replyRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tat_reply_subject_refused_total", Help: "Replies not sent because their subject is not allowed (TAT_REPLY_PREFIXES, TAT_APP_REPLY_PREFIXES, no stream or $ subject).",
		}),
		sessionCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tat_session_requests_total", Help: "Sessions service requests by endpoint and status code.",
		}, []string{"endpoint", "status_code"}),
	}
	m.eventsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tat_events_refused_total", Help: "Events not applied (unsigned, bad_signature, malformed) or delivered into a command stream (delivered_as_command).",
	}, []string{"reason"})
	m.jwksRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tat_jwks_shared_refused_total", Help: "Shared JWK set entries of the key-value bucket refused (unsigned, bad_signature, malformed); the set is fetched instead.",
	}, []string{"reason"})
	reg.MustRegister(m.outcomes, m.latency, m.retries, m.deadLetters, m.replyRefused, m.sessionCalls, m.eventsRefused, m.jwksRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for i, name := range []string{"profiles", "users", "sessions"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tat_view_" + name, Help: "Records held in the in-memory view.",
		}, func() float64 {
			p, u, s := view()
			return float64([]int{p, u, s}[i])
		}))
	}
	return m
}
