package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// The sessions service (contract section 8) is plain NATS request/reply
// to <prefix>.sessions.<endpoint>.

func cmdSessionsAuthenticate(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	token := fs.String("session-token", "", "the session_token")
	jwt := fs.String("session-jwt", "", "the session_jwt")
	duration := fs.Int("duration", 0, "session_duration_minutes: extend the session to now plus `MINUTES`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if (*token == "") == (*jwt == "") {
		return usageErrorf("give one of -session-token and -session-jwt")
	}
	req := map[string]any{}
	if *token != "" {
		req["session_token"] = *token
	} else {
		req["session_jwt"] = *jwt
	}
	if isSet(fs, "duration") {
		req["session_duration_minutes"] = *duration
	}
	return c.request("authenticate", req)
}

func cmdSessionsRevoke(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("session-id", "", "the session_id")
	token := fs.String("session-token", "", "the session_token")
	jwt := fs.String("session-jwt", "", "the session_jwt")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	req := map[string]any{}
	for name, v := range map[string]string{"session_id": *id, "session_token": *token, "session_jwt": *jwt} {
		if v != "" {
			req[name] = v
		}
	}
	if len(req) != 1 {
		return usageErrorf("give exactly one of -session-id, -session-token and -session-jwt")
	}
	return c.request("revoke", req)
}

func cmdSessionsJWKS(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	return c.request("jwks", map[string]any{})
}

// request sends body to <prefix>.sessions.<endpoint>, waits for the reply
// and prints it.
func (c *cli) request(endpoint string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(c.ctx, c.g.timeout)
	defer cancel()
	subject := c.g.subject("sessions", endpoint)
	reply, err := nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no sessions service answers on %s: is attestd running against this server, with -prefix %s?", subject, c.g.prefix)
	case err != nil && c.ctx.Err() != nil:
		return errors.New("interrupted")
	case err != nil:
		return refused(nc, fmt.Errorf("request %s: %w", subject, err))
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("the sessions service failed: %s %s", code, reply.Header.Get(micro.ErrorHeader))
	}
	return printReply(c.stdout, reply.Data)
}
