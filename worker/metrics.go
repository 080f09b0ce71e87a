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
	reg.MustRegister(m.outcomes, m.latency, m.retries, m.deadLetters, m.replyRefused, m.sessionCalls,
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
