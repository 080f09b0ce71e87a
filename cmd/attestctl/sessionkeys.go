package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tat-worker/attest/domain"
)

// The worker's own session-signing keys: "keys rotate" and "keys list".
// (Not "keygen", which makes a development issuer's key pair on disk.)

func cmdKeysRotate(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	changeID := fs.String("change-id", "", "the command's change_id, also its Nats-Msg-Id (default: a random UUID); a repeat with the same id rotates nothing")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	id := *changeID
	if id == "" {
		id = uuid.NewString()
	}
	if !domain.ValidCommandID(id) {
		return usageErrorf("-change-id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	body, err := json.Marshal(map[string]string{"change_id": id, "op": domain.OpRotate})
	if err != nil {
		return err
	}
	return c.publishAndWait(c.g.subject("keys", "commands"), id, body)
}

func cmdKeysList(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	return c.read("keys.list", map[string]any{})
}

// read sends body to <prefix>.reads.<endpoint> (the tat-reads service),
// waits for the reply and prints it.
func (c *cli) read(endpoint string, body any) error {
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
	subject := c.g.subject("reads", endpoint)
	reply, err := nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no reads service answers on %s: is attestd running against this server, with -prefix %s?", subject, c.g.prefix)
	case err != nil && c.ctx.Err() != nil:
		return errors.New("interrupted")
	case err != nil:
		return refused(nc, fmt.Errorf("request %s: %w", subject, err))
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("the reads service failed: %s %s", code, reply.Header.Get(micro.ErrorHeader))
	}
	return printReply(c.stdout, reply.Data)
}
