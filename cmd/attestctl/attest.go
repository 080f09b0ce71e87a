package main

import (
	"fmt"
	"strings"

	"github.com/tat-worker/attest/client"
	"github.com/tat-worker/attest/domain"
)

func cmdAttest(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	profile := fs.String("profile", "", "the `PROFILE_ID` (required)")
	token := fs.String("token", "", "the trusted token, a compact `JWS`")
	tokenFile := fs.String("token-file", "", "read the trusted token from `FILE` (- for stdin) instead")
	duration := fs.Int("duration", 0, "session_duration_minutes: start a session, or extend the given one, for `MINUTES` (5 to 527040)")
	sessionToken := fs.String("session-token", "", "add the factor to the session whose session_token is `TOKEN`")
	sessionJWT := fs.String("session-jwt", "", "add the factor to the session whose session_jwt is `JWT`")
	claims := fs.String("claims", "", "session_custom_claims, a `JSON` object")
	requestID := fs.String("request-id", "", "request_id `ID`, also the Nats-Msg-Id; the same id again gets the first outcome (default: a random id)")
	app := fs.String("app", "", "publish on <prefix>.attest.requests.`NAME` instead of <prefix>.attest.requests")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "profile"); err != nil {
		return err
	}
	if (*token == "") == (*tokenFile == "") {
		return usageErrorf("give one of -token and -token-file")
	}
	if *sessionToken != "" && *sessionJWT != "" {
		return usageErrorf("give -session-token or -session-jwt, not both")
	}
	if isSet(fs, "duration") && *duration <= 0 {
		return usageErrorf("-duration must be a positive number of minutes (5 to 527040)")
	}
	if *requestID != "" && !domain.ValidCommandID(*requestID) {
		return usageErrorf("-request-id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	if *app != "" && (!prefixPattern.MatchString(*app) || strings.Contains(*app, ".")) {
		return usageErrorf("-app %q must be one subject token of A-Za-z0-9_-", *app)
	}
	req := client.AttestRequest{RequestID: *requestID, ProfileID: *profile, Token: client.NewSecret(*token),
		SessionDurationMinutes: *duration,
		SessionToken:           client.NewSecret(*sessionToken), SessionJWT: client.NewSecret(*sessionJWT)}
	if *tokenFile != "" {
		data, err := readInput(c.stdin, *tokenFile)
		if err != nil {
			return err
		}
		req.Token = client.NewSecret(strings.TrimSpace(string(data)))
	}
	if *claims != "" {
		obj, err := decodeObject([]byte(*claims))
		if err != nil {
			return usageErrorf("-claims: %v", err)
		}
		req.SessionCustomClaims = map[string]any{}
		for k, v := range obj { // json.RawMessage: sent as written
			req.SessionCustomClaims[k] = v
		}
	}
	var opts []client.Option
	if *app != "" {
		opts = append(opts, client.WithApp(*app))
	}
	cl, cn, err := c.client(opts...)
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	res, err := cl.Attest(c.ctx, req)
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, revealedAttest{
			StatusCode: res.StatusCode, RequestID: res.RequestID, UserID: res.UserID, User: res.User, Session: res.Session,
			SessionToken: res.SessionToken.Reveal(), SessionJWT: res.SessionJWT.Reveal(),
		})
	}
	return writeAttest(c, res)
}

// revealedAttest is an attest result as -json prints it: the reply, with
// the session's secrets in clear for the person who asked.
type revealedAttest struct {
	StatusCode   int             `json:"status_code"`
	RequestID    string          `json:"request_id"`
	UserID       string          `json:"user_id"`
	User         *client.User    `json:"user,omitempty"`
	Session      *client.Session `json:"session,omitempty"`
	SessionToken string          `json:"session_token,omitempty"`
	SessionJWT   string          `json:"session_jwt,omitempty"`
}

// writeAttest prints the outcome: who, which session until when, then the
// secrets on their own lines.
func writeAttest(c *cli, res *client.AttestResult) error {
	f := newFields(c.stdout)
	f.add("status", fmt.Sprintf("%d", res.StatusCode))
	f.add("request_id", res.RequestID)
	user := res.UserID
	if res.User != nil {
		if e := userEmails(*res.User); e != "" {
			user += " (" + e + ")"
		}
	}
	f.add("user_id", user)
	if s := res.Session; s != nil {
		f.add("session_id", s.SessionID)
		f.add("expires_at", when(s.ExpiresAt))
		f.add("roles", strings.Join(s.Roles, ","))
		f.add("factors", factorTypes(*s))
	} else {
		f.add("session_id", "none (no -duration and no session given: the token was verified only)")
	}
	if err := f.flush(); err != nil {
		return err
	}
	return writeSecrets(c.stdout, res.SessionToken, res.SessionJWT)
}
