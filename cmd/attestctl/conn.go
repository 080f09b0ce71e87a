package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/client"
	"github.com/tat-worker/attest/worker/natsconn"
)

// envJSAPIPrefix names the JetStream API prefix of an account that imports
// the worker account's API (the auditor's $JS.TAT.API).
const envJSAPIPrefix = "TAT_NATS_JS_API_PREFIX"

// conn is a connection and what it was made with.
type conn struct {
	nc    *nats.Conn
	jsAPI string // the JetStream API prefix; "" is the account's own
}

// settings reads the connection settings: the TAT_NATS_* variables, or
// with -context the NATS CLI context, which replaces them all; -nats, when
// given, replaces the URL either way. It returns the settings, the
// JetStream API prefix, and how to rewrite a message that names a
// TAT_NATS_* setting so that it names the context's field instead.
func (c *cli) settings() (natsconn.Settings, string, *strings.Replacer, error) {
	getenv, rename := os.Getenv, strings.NewReplacer()
	if c.g.context != "" {
		nctx, err := loadNATSContext(c.g.context)
		if err != nil {
			return natsconn.Settings{}, "", nil, err
		}
		getenv, rename = nctx.getenv, nctx.rename()
	}
	s, err := natsconn.Load(getenv)
	if err != nil {
		return s, "", nil, fmt.Errorf("NATS settings:\n%s", rename.Replace(err.Error()))
	}
	switch {
	case c.g.natsURL != "":
		s.URL = c.g.natsURL
	case s.URL == "":
		s.URL = defaultNATSURL
	}
	return s, getenv(envJSAPIPrefix), rename, nil
}

// connect dials NATS within the timeout with the settings (see settings).
func (c *cli) connect() (*conn, error) {
	s, jsAPI, rename, err := c.settings()
	if err != nil {
		return nil, err
	}
	// Asynchronous errors (a refused publish) are reported with the
	// command's own error (see refused), not printed apart.
	nc, err := s.Dial(nats.Name("attestctl"), nats.Timeout(c.g.timeout), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if errors.Is(err, nats.ErrNoServers) {
		return nil, fmt.Errorf("no NATS server answers at %s: is it running, and is -nats (or TAT_NATS_URL) right?", natsconn.Redact(s.URL))
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %s", natsconn.Redact(s.URL), rename.Replace(err.Error()))
	}
	return &conn{nc: nc, jsAPI: jsAPI}, nil
}

// client connects and returns the worker's client on the connection;
// close the connection (conn.nc) when done.
func (c *cli) client(opts ...client.Option) (*client.Client, *conn, error) {
	cn, err := c.connect()
	if err != nil {
		return nil, nil, err
	}
	opts = append([]client.Option{client.WithPrefix(c.g.prefix), client.WithTimeout(c.g.timeout)}, opts...)
	if cn.jsAPI != "" {
		opts = append(opts, client.WithJetStreamAPIPrefix(cn.jsAPI))
	}
	cl, err := client.New(cn.nc, opts...)
	if err != nil {
		cn.nc.Close()
		return nil, nil, err
	}
	return cl, cn, nil
}

// jetStream is the JetStream API as this identity reaches it: through
// TAT_NATS_JS_API_PREFIX (or the context's jetstream_api_prefix) when set,
// else the account's own.
func (cn *conn) jetStream() (jetstream.JetStream, error) {
	if cn.jsAPI != "" {
		return jetstream.NewWithAPIPrefix(cn.nc, cn.jsAPI)
	}
	return jetstream.New(cn.nc)
}

// explain turns what a client call returned into one line for people: a
// refusal stays as it is (report prints it); a call that got no answer
// says why, and what to do.
func (c *cli) explain(cn *conn, err error) error {
	var te *client.TransportError
	var ce *client.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return err
	case !errors.As(err, &te):
		return refused(cn.nc, errors.New(strings.TrimPrefix(err.Error(), "tat: ")))
	}
	if le := permissionError(cn.nc); le != nil {
		return refused(cn.nc, fmt.Errorf("%s on %s got no answer", te.Op, te.Subject))
	}
	running := fmt.Sprintf("is attestd running against this server, with -prefix %s?", c.g.prefix)
	stored := ""
	if te.Stored {
		flagName := "-change-id"
		if te.Op == "attest" {
			flagName = "-request-id"
		}
		stored = fmt.Sprintf("; %s is stored in %s as seq %d and will still be applied: run the command again with %s %s for its outcome",
			te.ID, te.Stream, te.Sequence, flagName, te.ID)
	}
	switch {
	case errors.Is(te, client.ErrNoStream):
		return fmt.Errorf("no stream takes %s: %s", te.Subject, running)
	case errors.Is(te, client.ErrNoResponders):
		return fmt.Errorf("nobody answers on %s: %s", te.Subject, running)
	case errors.Is(te, client.ErrTimeout):
		return fmt.Errorf("no reply within %s%s", c.g.timeout, stored)
	case errors.Is(te, context.Canceled):
		return fmt.Errorf("interrupted%s", stored)
	case errors.Is(te, client.ErrMalformedReply):
		return fmt.Errorf("the reply on %s is not the contract's: %v", te.Subject, te.Cause)
	}
	return fmt.Errorf("%s on %s: %v%s", te.Op, te.Subject, te.Err, stored)
}

// permissionError is the server's refusal of this identity, when the
// connection met one (a permissions violation arrives on its own, and the
// request it spoiled only times out).
func permissionError(nc *nats.Conn) error {
	if le := nc.LastError(); le != nil && errors.Is(le, nats.ErrPermissionViolation) {
		return le
	}
	return nil
}

// refused adds to err the server's refusal of this identity, when the
// connection met one.
func refused(nc *nats.Conn, err error) error {
	le := permissionError(nc)
	if le == nil {
		return err
	}
	hint := `see README "Deploying safely" for who may do what`
	if strings.Contains(le.Error(), "Subscription to") {
		hint = "is TAT_NATS_INBOX_PREFIX this identity's inbox prefix? " + hint
	}
	return fmt.Errorf("%w; the server refused this identity: %v (%s)", err, le, hint)
}

// refusal is the line report prints for a refusal by the worker,
// "error_type: message"; with -json the refusal is also printed on stdout
// as the contract's error object.
func (c *cli) refusal(err error) (string, bool) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return "", false
	}
	if c.g.json {
		_ = printJSON(c.stdout, struct {
			StatusCode   int    `json:"status_code"`
			ErrorType    string `json:"error_type"`
			ErrorMessage string `json:"error_message"`
		}{ce.StatusCode, ce.Type, ce.Message})
	}
	if ce.Message == "" {
		return ce.Type, true
	}
	return ce.Type + ": " + ce.Message, true
}

// printJSON prints v as indented JSON.
func printJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
