package natsconn

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
)

// ConnError is a connection failure that retrying will not mend: the
// server refused the credential, or TLS failed on a certificate. Its
// message is one line that names the setting to check.
type ConnError struct {
	err  error
	text string // err's text, canonical for authorization errors
	hint string
}

func (e *ConnError) Error() string { return e.text + ": " + e.hint }
func (e *ConnError) Unwrap() error { return e.err }

// Permanent reports whether err is a ConnError: a wrong credential or
// certificate, which no retry mends.
func Permanent(err error) bool {
	var ce *ConnError
	return errors.As(err, &ce)
}

// Explain turns a connection error caused by the settings into a
// ConnError naming what to check; other errors (no server reachable yet)
// come back as they are. Neither quotes a password.
func (s Settings) Explain(err error) error {
	if err == nil {
		return nil
	}
	for _, auth := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired} {
		if errors.Is(err, auth) {
			return &ConnError{err: err, text: auth.Error(), hint: "check " + s.credential()}
		}
	}
	if hint := s.tlsHint(err); hint != "" {
		return &ConnError{err: err, text: err.Error(), hint: hint}
	}
	return err
}

func (s Settings) tlsHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA):
		if s.TLSCA == "" {
			return "the server's certificate is signed by a CA this client does not trust: set " + EnvTLSCA + " to that CA's PEM file"
		}
		return "the server's certificate is not signed by the CA in " + EnvTLSCA + ": check " + EnvTLSCA
	case errors.As(err, &hostname):
		return "the server's certificate does not name the host this client dialled: check the host in " + EnvURL + " or the server's certificate"
	case errors.As(err, &invalid):
		return "the server's certificate is not valid (expired, or not for a server): check the server's certificate"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "TLS settings are given but the server does not offer TLS: check " + EnvURL
	case errors.Is(err, nats.ErrTLS), strings.Contains(err.Error(), "remote error: tls:"):
		// The server ended the handshake: with TLS 1.3 a refused client
		// certificate shows only as the server hanging up.
		if s.TLSCert == "" {
			return "the server refused the TLS handshake; it may require a client certificate: set " + EnvTLSCert + "/" + EnvTLSKey
		}
		return "the server refused the TLS handshake: check " + EnvTLSCert + "/" + EnvTLSKey + " (a certificate signed by the CA the server trusts) and " + EnvTLSCA
	}
	return ""
}

// credential names the credential in use, for an authorization error.
func (s Settings) credential() string {
	switch {
	case s.CredsFile != "":
		return EnvCreds
	case s.NKeyFile != "":
		return EnvNKey
	case s.User != "":
		return EnvUser + "/" + EnvPassword
	}
	for _, u := range splitURLs(s.URL) {
		if p, err := parseURL(u); err == nil && p.User != nil {
			return "the user and password in " + EnvURL
		}
	}
	return "the credential: the server wants one and none is given (set " + oneOf() + ")"
}

// Redact returns a URL list fit for a log line: each URL's password (or
// token) is REDACTED. A URL that does not parse is replaced whole, since
// it may hold a password where the parser could not find it.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, raw := range parts {
		u := strings.TrimSpace(raw)
		if u == "" {
			continue
		}
		p, err := parseURL(u)
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)"
		case p.User == nil:
			parts[i] = u
		default:
			if _, has := p.User.Password(); has {
				p.User = url.UserPassword(p.User.Username(), "REDACTED")
			} else {
				p.User = url.User("REDACTED") // a token
			}
			parts[i] = p.String()
			if !strings.Contains(u, "://") {
				parts[i] = strings.TrimPrefix(parts[i], "nats://")
			}
		}
	}
	return strings.Join(parts, ",")
}

// Format prints String for every verb, so no verb (%d, %#v) can print
// the URL's password field by field.
func (s Settings) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// String describes the settings for a log line: the redacted URL, the
// credential kind and file names, never a password.
func (s Settings) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "url=%s", Redact(s.URL))
	switch {
	case s.CredsFile != "":
		fmt.Fprintf(&b, " creds=%s", s.CredsFile)
	case s.NKeyFile != "":
		fmt.Fprintf(&b, " nkey=%s", s.NKeyFile)
	case s.User != "":
		fmt.Fprintf(&b, " user=%s", s.User)
	}
	if s.tls != nil {
		b.WriteString(" tls=required")
	}
	if s.InboxPrefix != "" {
		fmt.Fprintf(&b, " inbox=%s", s.InboxPrefix)
	}
	return b.String()
}
