package main

import (
	"fmt"

	"github.com/tat-worker/attest/client"
)

// The worker's own session-signing keys: "keys rotate" and "keys list".
// (Not "keygen", which makes a development issuer's key pair on disk.)

func cmdKeysRotate(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	vf := versionFlags{fs: fs, changeID: fs.String("change-id", "", "the command's change_id `ID`, also its Nats-Msg-Id; a repeat with the same id rotates nothing and gets the first outcome (default: a random id)")}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := vf.check(); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	res, err := cl.RotateSigningKey(c.ctx, client.RotateKeyCommand{ChangeID: *vf.changeID})
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, res)
	}
	f := newFields(c.stdout)
	f.add("change_id", res.ChangeID)
	if k := res.Key; k != nil {
		f.add("key", fmt.Sprintf("%s (number %d): published %s, signs from %s", k.KID, k.Number, when(k.PublishAt), when(k.SignFrom)))
	}
	if k := res.PreviousKey; k != nil {
		f.add("previous_key", fmt.Sprintf("%s (number %d): signs until %s, retires %s", k.KID, k.Number, when(k.SignUntil), when(k.RetireAt)))
	}
	return f.flush()
}

func cmdKeysList(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	keys, err := cl.ListSigningKeys(c.ctx)
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, map[string]any{"keys": keys})
	}
	tw := newTable(c.stdout, "KID", "NUMBER", "STATE", "PUBLISHED", "SIGNS FROM", "SIGNS UNTIL", "RETIRES")
	for _, k := range keys {
		row(tw, k.KID, itoa(k.Number), k.State, when(k.PublishAt), when(k.SignFrom), when(k.SignUntil), when(k.RetireAt))
	}
	return tw.Flush()
}
