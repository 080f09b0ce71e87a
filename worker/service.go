package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// startSessionsService registers the tat-sessions micro service (contract
// section 8): authenticate, revoke (a bearer proof), admin.revoke (by id,
// for operators) and jwks. Every worker runs an instance; NATS spreads
// requests across them through the service's queue group.
func startSessionsService(nc *nats.Conn, cfg Config, h SessionsHandler, is *domain.Issuer, now func() time.Time, m *metrics, log zerolog.Logger) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name: "tat-sessions", Version: "2.0.0",
		Description: "authenticate and revoke sessions; the keys that sign session JWTs",
	})
	if err != nil {
		return nil, err
	}
	g := svc.AddGroup(cfg.subject("sessions"))
	// allowed applies the reply rules of commands (replyRefusal) to the
	// subject a caller chose for the reply: a reply may hold a session
	// token and a session JWT, and must never land in a stream or outside
	// the allowed reply prefixes.
	allowed := func(endpoint string, req micro.Request) bool {
		refusal := cfg.replyRefusal(req.Subject(), req.Reply())
		if refusal == "" {
			return true
		}
		log.Warn().Str("endpoint", endpoint).Str("reason", refusal).Msg("sessions reply refused: the reply is not sent")
		m.replyRefused.Inc()
		return false
	}
	respond := func(endpoint string, req micro.Request, v handlers.SessionReply) {
		m.sessionCalls.WithLabelValues(endpoint, strconv.Itoa(v.StatusCode)).Inc()
		if v.StatusCode >= 500 {
			// Logged once, here; the cause never holds the request's secrets.
			log.Error().Err(v.Cause()).Str("endpoint", endpoint).Str("error_type", v.ErrorType).Msg("sessions service failure")
		}
		if allowed(endpoint, req) {
			_ = req.RespondJSON(v)
		}
	}
	call := func(f func(context.Context, []byte) handlers.SessionReply, endpoint string) micro.HandlerFunc {
		return func(req micro.Request) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			respond(endpoint, req, f(ctx, req.Data()))
		}
	}
	if err := g.AddEndpoint("authenticate", call(h.Authenticate, "authenticate")); err != nil {
		return nil, err
	}
	if err := g.AddEndpoint("revoke", call(h.Revoke, "revoke")); err != nil {
		return nil, err
	}
	// The operators' revoke, by session id or user id, on a subject of its
	// own (<prefix>.sessions.admin.revoke) so that NATS permissions can give
	// it to the admin alone: ids are not secrets. Its reply holds no bearer
	// secret; it follows the same reply rule as every service reply (there
	// is no rule of the admin's own: reads replies follow this one too).
	if err := g.AddEndpoint("admin_revoke", call(h.AdminRevoke, "admin_revoke"), micro.WithEndpointSubject("admin.revoke")); err != nil {
		return nil, err
	}
	if err := g.AddEndpoint("jwks", micro.HandlerFunc(func(req micro.Request) {
		m.sessionCalls.WithLabelValues("jwks", "200").Inc()
		if !allowed("jwks", req) {
			return
		}
		body, _ := json.Marshal(is.PublicJWKS(now()))
		_ = req.Respond(body)
	})); err != nil {
		return nil, err
	}
	return svc, nil
}
