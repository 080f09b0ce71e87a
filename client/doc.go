// Package client is the Go client of attestd, the worker that exchanges
// trusted JWTs for sessions over NATS JetStream (the wire contract is
// docs/CONTRACT.md). Services use it to publish attest requests and
// profile and user commands, to call the sessions and reads services, and
// to follow the audit log:
//
//	nc, _ := nats.Connect(url, nats.CustomInboxPrefix("_INBOX_billing"))
//	c, err := client.New(nc, client.WithApp("billing"))
//	res, err := c.Attest(ctx, client.AttestRequest{
//		ProfileID: "trusted-auth-token-profile-sso", Token: client.NewSecret(jwt),
//		SessionDurationMinutes: 60,
//	})
//	switch {
//	case errors.Is(err, client.ErrTokenReplayed): // a refusal: *client.Error
//	case err != nil: // no usable answer: *client.TransportError
//	default: use(res.Session, res.SessionToken.Reveal())
//	}
//
// # Commands: one outcome per id
//
// Attest, ApplyProfile, DeleteProfile, ApplyUser and DeleteUser publish a
// command to the worker's streams with JetStream and wait for its reply:
//
//   - each call subscribes a fresh inbox (nc.NewInbox(), or
//     WithInboxPrefix) and flushes it before publishing, so a fast reply
//     cannot be missed;
//   - the command carries its id (RequestID or ChangeID; a random NewID
//     when empty) as Nats-Msg-Id, and the inbox as Tat-Reply-To;
//   - a PubAck that does not come within WithAckWait (the publish or its
//     ack was lost) is retried with the same id until the context ends: the
//     stream drops a copy within its duplicate window, and the worker
//     answers a later copy with the id's first outcome, so the command is
//     applied once and has one event;
//   - a PubAck that says "duplicate" may stand for another publisher's copy,
//     whose reply went elsewhere: if no reply comes within 1.5 duplicate
//     windows (WithCommandDedupWindow), the command is published again,
//     past the window, and the worker answers here;
//   - the first reply naming the id is returned; later copies (a
//     redelivered command is answered again) and replies naming another id
//     are dropped.
//
// When a call fails for want of an answer (its context ended, the ack
// never came), the *TransportError gives the id: calling again with the
// same id returns the command's one outcome.
//
// Sessions (Authenticate, Revoke, AdminRevoke, SessionJWKS) and reads (GetProfile,
// ListUsers, ...) are core NATS requests on a fresh inbox; they are not
// retried. Events reads the audit log with an ordered consumer.
//
// # Errors
//
// A refusal is an *Error that compares with errors.Is by error_type
// against ErrTokenReplayed, ErrSessionNotFound and the other sentinels,
// one per error_type of the contract. No usable answer (no responders, no
// stream, the context's end, a malformed reply) is a *TransportError,
// which never matches a sentinel *Error; for a command it says whether the
// stream holds it and under which id to ask again.
//
// # Secrets
//
// Trusted tokens, session tokens and session JWTs are Secret values: they
// print REDACTED with every fmt verb, in JSON and in slog, so requests and
// results can be logged. Reveal returns the value.
//
// # Security notes
//
// Replies may carry bearer secrets and are accepted from whoever publishes
// on the call's inbox. The client takes only a command reply that names the
// command's id, but a service reply has no id to check, and anyone who may
// subscribe to the inbox reads the reply. Inboxes are hard to guess, not
// secret: a command's Tat-Reply-To header is stored in the command stream
// until the worker takes it, and nc.NewInbox() names are NUIDs, made to be
// unique rather than secret: from names seen, later ones of the same
// process can be guessed (WithInboxPrefix inboxes carry 128 random bits
// each instead). So the
// deployment must confine inboxes with NATS permissions: each application
// subscribes to its own prefix only (nats.CustomInboxPrefix("_INBOX_<app>")
// and subscribe permission on _INBOX_<app>.>), nobody else may publish or
// subscribe there, and only the worker answers there. Events needs the
// JetStream API permissions of an ordered consumer on <PREFIX>_EVENTS
// (through WithJetStreamAPIPrefix when the account imports that API).
//
// # Session-signing keys
//
// RotateSigningKey and ListSigningKeys rotate and list the workers' own
// keys, those that sign session JWTs (SessionJWKS publishes them).
package client
