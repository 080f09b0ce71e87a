package main

import (
	"fmt"

	"github.com/tat-worker/attest/client"
)

// The sessions service (contract section 7) and the sessions reads.

func cmdSessionsList(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	user := fs.String("user", "", "the `USER_ID` whose active sessions to list (required)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "user"); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	ss, err := cl.ListSessions(c.ctx, *user)
	if err != nil {
		return c.explain(cn, err)
	}
	switch {
	case c.g.json:
		return printJSON(c.stdout, map[string]any{"sessions": ss})
	case len(ss) == 0:
		_, err := fmt.Fprintf(c.stdout, "user %s has no active session\n", *user)
		return err
	}
	return writeSessions(c.stdout, ss)
}

func cmdSessionsGet(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the `SESSION_ID` (required)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "id"); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	s, err := cl.GetSession(c.ctx, *id)
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, s)
	}
	return writeSession(c.stdout, *s)
}

func cmdSessionsAuthenticate(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	token := fs.String("session-token", "", "the session_token `TOKEN`")
	jwt := fs.String("session-jwt", "", "the session_jwt `JWT`")
	fs.alias("token", "session-token")
	fs.alias("jwt", "session-jwt")
	duration := fs.Int("duration", 0, "session_duration_minutes: extend the session to now plus `MINUTES`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if (*token == "") == (*jwt == "") {
		return usageErrorf("give one of -session-token and -session-jwt")
	}
	if isSet(fs, "duration") && *duration <= 0 {
		return usageErrorf("-duration must be a positive number of minutes (5 to 527040)")
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	res, err := cl.Authenticate(c.ctx, client.AuthenticateRequest{SessionToken: client.NewSecret(*token),
		SessionJWT: client.NewSecret(*jwt), SessionDurationMinutes: *duration})
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, struct {
			StatusCode   int            `json:"status_code"`
			Session      client.Session `json:"session"`
			User         client.User    `json:"user"`
			SessionToken string         `json:"session_token,omitempty"`
			SessionJWT   string         `json:"session_jwt,omitempty"`
		}{res.StatusCode, res.Session, res.User, res.SessionToken.Reveal(), res.SessionJWT.Reveal()})
	}
	f := newFields(c.stdout)
	f.add("status", fmt.Sprintf("%d", res.StatusCode))
	sessionFields(f, res.Session)
	if err := f.flush(); err != nil {
		return err
	}
	return writeSecrets(c.stdout, res.SessionToken, res.SessionJWT)
}

func cmdSessionsRevoke(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the `SESSION_ID` (an operator's revoke, on sessions.admin.revoke)")
	token := fs.String("session-token", "", "the session_token `TOKEN`")
	jwt := fs.String("session-jwt", "", "the session_jwt `JWT`")
	user := fs.String("user", "", "revoke every active session of the user `USER_ID` (an operator's revoke, on sessions.admin.revoke)")
	fs.alias("session-id", "id")
	fs.alias("token", "session-token")
	fs.alias("jwt", "session-jwt")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	given := 0
	for _, v := range []string{*id, *token, *jwt, *user} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usageErrorf("give exactly one of -id, -session-token, -session-jwt and -user")
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	// A session token or JWT is a bearer proof: the applications' revoke.
	// Ids are not secrets: by -id or -user it is the operators' revoke, on
	// sessions.admin.revoke (the admin identity of the shipped model).
	var res *client.RevokeResult
	if *id != "" || *user != "" {
		res, err = cl.AdminRevoke(c.ctx, client.AdminRevokeRequest{SessionID: *id, UserID: *user})
	} else {
		res, err = cl.Revoke(c.ctx, client.RevokeRequest{SessionToken: client.NewSecret(*token), SessionJWT: client.NewSecret(*jwt)})
	}
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		if *user == "" {
			return printJSON(c.stdout, res)
		}
		ids := res.RevokedSessionIDs
		if ids == nil {
			ids = []string{} // none: [] as the worker sends it, not left out
		}
		return printJSON(c.stdout, map[string]any{"status_code": res.StatusCode, "revoked_session_ids": ids})
	}
	switch {
	case *user == "" && res.Session != nil:
		_, err = fmt.Fprintf(c.stdout, "revoked session %s of user %s\n", res.Session.SessionID, res.Session.UserID)
	case *user == "":
		_, err = fmt.Fprintln(c.stdout, "revoked")
	case len(res.RevokedSessionIDs) == 0:
		_, err = fmt.Fprintf(c.stdout, "user %s has no active session to revoke\n", *user)
	default:
		tw := newTable(c.stdout, "REVOKED SESSION ID")
		for _, s := range res.RevokedSessionIDs {
			row(tw, s)
		}
		err = tw.Flush()
	}
	return err
}

func cmdSessionsJWKS(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	set, err := cl.SessionJWKS(c.ctx)
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, set)
	}
	tw := newTable(c.stdout, "KID", "KTY", "CRV", "ALG", "USE")
	for _, k := range set.Keys {
		row(tw, k.Kid, k.Kty, k.Crv, k.Alg, k.Use)
	}
	return tw.Flush()
}
