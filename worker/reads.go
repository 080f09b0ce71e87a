package worker

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/handlers"
)

// readsInFlight bounds the read requests one worker answers at a time.
// micro calls an endpoint's handler one request after another; reads run
// in goroutines instead, so that lookups that miss at the same moment
// share one catch-up round (see feed.lastSeq) and a read waiting on a
// lagging view does not hold up the others. When all slots are taken the
// endpoints stop reading from the connection: the backpressure is NATS's.
const readsInFlight = 16

// replyMargin is what a reads reply needs beside its list items.
const replyMargin = 4 << 10

func newReadMetrics(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tat_read_requests_total", Help: "Reads service requests by endpoint and status code.",
	}, []string{"endpoint", "status_code"})
	reg.MustRegister(c)
	return c
}

// readReplyLimit is Parts.MaxReadReplyBytes: a page never makes a reply
// the server refuses (0: the handlers' default fits).
func readReplyLimit(nc *nats.Conn) int {
	if max := int(nc.MaxPayload()) - replyMargin; max > 0 && max < handlers.DefaultMaxReplyBytes {
		return max
	}
	return 0
}

// startReadsService registers the tat-reads micro service: profiles, users
// and sessions answered from the worker's in-memory view. Every worker runs
// an instance; NATS spreads requests across them through the service's
// queue group.
func startReadsService(nc *nats.Conn, cfg Config, h ReadsHandler, calls *prometheus.CounterVec, m *metrics, log zerolog.Logger) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name: "tat-reads", Version: "1.0.0",
		Description: "profiles, users and sessions as this worker's view holds them; never a secret",
	})
	if err != nil {
		return nil, err
	}
	g := svc.AddGroup(cfg.subject("reads"))
	slots := make(chan struct{}, readsInFlight)
	call := func(f func(context.Context, []byte) handlers.ReadReply, endpoint string) micro.HandlerFunc {
		return func(req micro.Request) {
			// The same reply rules as commands and the sessions service
			// (replyRefusal): a read names users and sessions, and must
			// never land in a stream or outside the allowed reply prefixes.
			if refusal := cfg.replyRefusal(req.Subject(), req.Reply()); refusal != "" {
				log.Warn().Str("endpoint", endpoint).Str("reason", refusal).Msg("reads reply refused: the reply is not sent")
				m.replyRefused.Inc()
				calls.WithLabelValues(endpoint, "refused").Inc()
				return
			}
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				v := f(ctx, req.Data())
				calls.WithLabelValues(endpoint, strconv.Itoa(v.StatusCode)).Inc()
				if v.StatusCode >= 500 {
					log.Error().Err(v.Cause()).Str("endpoint", endpoint).Str("error_type", v.ErrorType).Msg("reads service failure")
				}
				if err := req.RespondJSON(v); err != nil {
					log.Warn().Err(err).Str("endpoint", endpoint).Msg("reads reply not sent")
				}
			}()
		}
	}
	for _, ep := range []struct {
		name, subject string
		f             func(context.Context, []byte) handlers.ReadReply
	}{
		{"profiles_get", "profiles.get", h.ProfileGet},
		{"profiles_list", "profiles.list", h.ProfileList},
		{"users_get", "users.get", h.UserGet},
		{"users_list", "users.list", h.UserList},
		{"sessions_get", "sessions.get", h.SessionGet},
		{"sessions_list", "sessions.list", h.SessionList},
		{"keys_list", "keys.list", h.KeysList},
	} {
		if err := g.AddEndpoint(ep.name, call(ep.f, ep.subject), micro.WithEndpointSubject(ep.subject)); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}
