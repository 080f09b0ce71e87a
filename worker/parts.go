package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// Parts are what a started worker has for its handlers. Some of them exist
// only once the worker has started (the events publisher, the feed, the
// JWKS key source, the session keys and their issuer), so the worker hands
// them to Deps.Handlers on every start; the handlers' store ports are the
// composition root's (cmd/attestd/compose), not the worker's.
type Parts struct {
	// Config is the worker's settings (ClockSkew, MaxTokenBytes,
	// JWKSAllowLocal are the handlers').
	Config Config
	Now    func() time.Time
	// View is the in-memory view the worker keeps current.
	View *handlers.View
	// Apply applies an event this worker published to View at once,
	// before the events stream delivers it (handlers.Completer.Apply).
	Apply func(domain.Event)
	// Barrier catches View up with the events stream (the worker's feed).
	Barrier handlers.Barrier
	// Publisher publishes events to the events stream, signed.
	Publisher handlers.Publisher
	// JWKS gives the keys of the profiles that name a JWKS URL.
	JWKS handlers.KeySource
	// SessionKeys are the fleet's session-signing keys: their rotation
	// (keys commands) and their list (reads).
	SessionKeys handlers.SessionKeys
	// Issuer issues session tokens and session JWTs with SessionKeys.
	Issuer *domain.Issuer
	// MaxReadReplyBytes bounds the list items of a reads reply so that the
	// server carries it (0: handlers.DefaultMaxReplyBytes).
	MaxReadReplyBytes int
}

// CommandHandler decides the commands of one kind (attest, profiles,
// users, keys) that the worker consumes from a stream.
type CommandHandler interface {
	// Handle decides one command; an error is transient (the command is
	// delivered again).
	Handle(ctx context.Context, in handlers.Input) (handlers.Output, error)
	// Abandon ends a command that exhausted its deliveries with cause.
	Abandon(ctx context.Context, in handlers.Input, cause error) (handlers.Output, error)
}

// SessionsHandler answers the endpoints of the tat-sessions service.
type SessionsHandler interface {
	Authenticate(ctx context.Context, data []byte) handlers.SessionReply
	// Revoke answers <prefix>.sessions.revoke (a bearer proof: the
	// applications'); AdminRevoke answers <prefix>.sessions.admin.revoke
	// (by session id or user id: the operators').
	Revoke(ctx context.Context, data []byte) handlers.SessionReply
	AdminRevoke(ctx context.Context, data []byte) handlers.SessionReply
}

// ReadsHandler answers the endpoints of the tat-reads service.
type ReadsHandler interface {
	ProfileGet(ctx context.Context, data []byte) handlers.ReadReply
	ProfileList(ctx context.Context, data []byte) handlers.ReadReply
	UserGet(ctx context.Context, data []byte) handlers.ReadReply
	UserList(ctx context.Context, data []byte) handlers.ReadReply
	SessionGet(ctx context.Context, data []byte) handlers.ReadReply
	SessionList(ctx context.Context, data []byte) handlers.ReadReply
	KeysList(ctx context.Context, data []byte) handlers.ReadReply
}

// Handlers are what the worker hands its messages and requests to: one
// CommandHandler per command kind, and the two services'. Every one is
// required.
type Handlers struct {
	Attest   CommandHandler // <prefix>.attest.requests[.<app>]
	Profiles CommandHandler // <prefix>.profiles.commands
	Users    CommandHandler // <prefix>.users.commands
	Keys     CommandHandler // <prefix>.keys.commands
	Sessions SessionsHandler
	Reads    ReadsHandler
}

// HandlerBuilder builds the handlers on a started worker's parts; the
// worker calls it on every start (cmd/attestd/compose.Handlers is the one
// attestd uses). An error stops the worker: it is not retried.
type HandlerBuilder func(Parts) (Handlers, error)

// check reports a handler missing.
func (h Handlers) check() error {
	for _, c := range []struct {
		name    string
		missing bool
	}{
		{"Attest", h.Attest == nil}, {"Profiles", h.Profiles == nil}, {"Users", h.Users == nil},
		{"Keys", h.Keys == nil}, {"Sessions", h.Sessions == nil}, {"Reads", h.Reads == nil},
	} {
		if c.missing {
			return fmt.Errorf("no %s handler", c.name)
		}
	}
	return nil
}

// commandRoute picks the handler of a message by the subject it arrived
// on; nil when none handles it.
type commandRoute func(subject string) CommandHandler

// bySubject routes by the exact subject.
func bySubject(m map[string]CommandHandler) commandRoute {
	return func(subject string) CommandHandler { return m[subject] }
}

// runnerFuncs turns a route into a runner's handle and abandon: the
// handler the subject names, given up with errDeliveriesExhausted.
func runnerFuncs(route commandRoute) (handle, abandon handleFunc) {
	call := func(do func(CommandHandler, context.Context, handlers.Input) (handlers.Output, error)) handleFunc {
		return func(ctx context.Context, subject string, in handlers.Input) (handlers.Output, error) {
			h := route(subject)
			if h == nil {
				// Not reached: the streams take only the subjects routed.
				return handlers.Output{}, fmt.Errorf("no handler for subject %q", subject)
			}
			return do(h, ctx, in)
		}
	}
	return call(CommandHandler.Handle), call(func(h CommandHandler, ctx context.Context, in handlers.Input) (handlers.Output, error) {
		return h.Abandon(ctx, in, errDeliveriesExhausted)
	})
}
