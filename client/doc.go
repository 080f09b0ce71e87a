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
// command to the worker's streams with JetStream and wait for its reply.
// Each call subscribes a fresh inbox (nc.NewInbox(), or WithInboxPrefix)
// and flushes it before publishing, sends the command's id (RequestID or
// ChangeID; a random NewID when empty) as Nats-Msg-Id and the inbox as
// Tat-Reply-To. A publish whose PubAck does not come is published again
// with the same id; the worker gives an id one outcome and one event
// whatever the number of copies, so the retry is safe. The first reply
// naming the id is returned; later copies are dropped.
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
// A reply is accepted from whoever publishes on the call's inbox: the
// inbox is unguessable (nc.NewInbox: a NUID whose random prefix is per
// process; WithInboxPrefix: 128 random bits) and the client checks that a
// command's reply names the command's id, but only NATS permissions stop
// another client that can publish to _INBOX.> (or read it) from answering
// or listening. Deployments should allow each application to subscribe to
// its own inbox prefix only (_INBOX_<app>.>) and allow replies there.
package client
