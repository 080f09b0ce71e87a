// Package natsconn is how attestd and attestctl connect to NATS: the
// TAT_NATS_* settings (URL, one way to authenticate, TLS, the inbox prefix)
// read once, checked at once, and turned into nats.go options; a URL with
// its password hidden for logs; and connection errors turned into one line
// that names the setting to fix. Nothing here ever prints a password, a
// seed or a key.
package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tat-worker/attest/domain"
)

// Settings are the TAT_NATS_* settings.
type Settings struct {
	// URL is TAT_NATS_URL: one or more URLs, comma-separated. It may carry
	// user:password@ (or a token@); then no other credential may be set.
	URL string
	// CredsFile is TAT_NATS_CREDS: a credentials file (user JWT and seed).
	CredsFile string
	// NKeyFile is TAT_NATS_NKEY: a file holding a user nkey seed.
	NKeyFile string
	// User and Password are TAT_NATS_USER and TAT_NATS_PASSWORD.
	User     string
	Password domain.Secret
	// TLSCA is TAT_NATS_TLS_CA: PEM certificates to trust for the server
	// (instead of the system's roots).
	TLSCA string
	// TLSCert and TLSKey are TAT_NATS_TLS_CERT and TAT_NATS_TLS_KEY: a
	// client certificate and its key, both PEM.
	TLSCert, TLSKey string
	// InboxPrefix is TAT_NATS_INBOX_PREFIX: where this client's replies
	// arrive (default _INBOX). Give each identity its own (_INBOX_admin,
	// _INBOX_app1) so that NATS permissions can keep its replies to it.
	InboxPrefix string

	tls *tls.Config // built by Load from TLSCA, TLSCert and TLSKey
}

// Setting names, as errors and hints name them.
const (
	EnvURL         = "TAT_NATS_URL"
	EnvCreds       = "TAT_NATS_CREDS"
	EnvNKey        = "TAT_NATS_NKEY"
	EnvUser        = "TAT_NATS_USER"
	EnvPassword    = "TAT_NATS_PASSWORD"
	EnvTLSCA       = "TAT_NATS_TLS_CA"
	EnvTLSCert     = "TAT_NATS_TLS_CERT"
	EnvTLSKey      = "TAT_NATS_TLS_KEY"
	EnvInboxPrefix = "TAT_NATS_INBOX_PREFIX"
)

var inboxPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Load reads the TAT_NATS_* settings through getenv, reads and checks every
// file they name (a credentials file or seed that does not parse, a CA file
// without a certificate, a certificate that does not match its key) and
// reports every problem at once. The errors name settings and files, never
// a password or a file's content.
func Load(getenv func(string) string) (Settings, error) {
	s := Settings{
		URL:         strings.TrimSpace(getenv(EnvURL)),
		CredsFile:   getenv(EnvCreds),
		NKeyFile:    getenv(EnvNKey),
		User:        getenv(EnvUser),
		Password:    domain.NewSecret(getenv(EnvPassword)),
		TLSCA:       getenv(EnvTLSCA),
		TLSCert:     getenv(EnvTLSCert),
		TLSKey:      getenv(EnvTLSKey),
		InboxPrefix: getenv(EnvInboxPrefix),
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if s.CredsFile != "" {
		if err := checkCreds(s.CredsFile); err != nil {
			bad(EnvCreds, "%v", err)
		}
	}
	if s.NKeyFile != "" {
		if _, err := nats.NkeyOptionFromSeed(s.NKeyFile); err != nil {
			bad(EnvNKey, "%s is not a user nkey seed file: %v", s.NKeyFile, fileError(err))
		}
	}
	switch {
	case s.User != "" && s.Password.Empty():
		bad(EnvPassword, "must be set with %s", EnvUser)
	case s.User == "" && !s.Password.Empty():
		bad(EnvUser, "must be set with %s", EnvPassword)
	}
	if s.InboxPrefix != "" && !inboxPattern.MatchString(s.InboxPrefix) {
		bad(EnvInboxPrefix, "%q is not a subject prefix (tokens of A-Za-z0-9_- joined by dots, no wildcard, no trailing dot)", s.InboxPrefix)
	}
	if err := s.checkAuth(); err != nil {
		errs = append(errs, err)
	}
	cfg, err := loadTLS(s.TLSCA, s.TLSCert, s.TLSKey)
	if err != nil {
		errs = append(errs, err)
	}
	s.tls = cfg
	return s, errors.Join(errs...)
}

// checkAuth refuses settings that name more than one way to authenticate,
// and a URL list that does not parse (quoting no URL: it may hold a
// password). It is called by Load and again by Options, since a caller may
// replace URL (attestctl's -nats flag).
func (s Settings) checkAuth() error {
	var ways []string
	if s.CredsFile != "" {
		ways = append(ways, EnvCreds)
	}
	if s.NKeyFile != "" {
		ways = append(ways, EnvNKey)
	}
	if s.User != "" || !s.Password.Empty() {
		ways = append(ways, EnvUser+"/"+EnvPassword)
	}
	for i, u := range splitURLs(s.URL) {
		p, err := parseURL(u)
		if err != nil || p.Host == "" {
			return fmt.Errorf("%s: URL number %d is not a URL like nats://host:4222", EnvURL, i+1)
		}
		if p.User != nil && !slices.Contains(ways, "user or token in "+EnvURL) {
			ways = append(ways, "user or token in "+EnvURL)
		}
	}
	if len(ways) > 1 {
		return fmt.Errorf("NATS credentials: give one of %s, not several (%s)", oneOf(), strings.Join(ways, " and "))
	}
	return nil
}

func oneOf() string {
	return EnvCreds + ", " + EnvNKey + ", " + EnvUser + "/" + EnvPassword + " or a user in " + EnvURL
}

// Options returns the nats.go options that carry the settings: the
// credential, the TLS configuration (which makes TLS required), and the
// inbox prefix. Callers add their own (name, timeouts, handlers).
func (s Settings) Options() ([]nats.Option, error) {
	if err := s.checkAuth(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case s.CredsFile != "":
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	case s.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(s.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %s is not a user nkey seed file: %v", EnvNKey, s.NKeyFile, fileError(err))
		}
		opts = append(opts, o)
	case s.User != "":
		opts = append(opts, nats.UserInfo(s.User, s.Password.Reveal()))
	}
	if s.tls != nil {
		opts = append(opts, nats.Secure(s.tls.Clone()))
	}
	if s.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(s.InboxPrefix))
	}
	return opts, nil
}

// Empty reports whether no setting but the URL is given.
func (s Settings) Empty() bool {
	return s.CredsFile == "" && s.NKeyFile == "" && s.User == "" && s.Password.Empty() &&
		s.TLSCA == "" && s.TLSCert == "" && s.TLSKey == "" && s.InboxPrefix == ""
}

// Dial connects with the settings and opts (added after the settings'
// own). A failure is explained (see Explain).
func (s Settings) Dial(opts ...nats.Option) (*nats.Conn, error) {
	own, err := s.Options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.URL, append(own, opts...)...)
	if err != nil {
		return nil, s.Explain(err)
	}
	return nc, nil
}

// loadTLS builds the client TLS configuration; nil when no TLS setting is
// given (a tls:// URL or a server that requires TLS still gets TLS, with
// the system's roots).
func loadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	var errs []error
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %v", EnvTLSCA, fileError(err)))
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				errs = append(errs, fmt.Errorf("%s: %s holds no PEM certificate", EnvTLSCA, caFile))
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case certFile != "" && keyFile == "":
		errs = append(errs, fmt.Errorf("%s: must be set with %s", EnvTLSKey, EnvTLSCert))
	case certFile == "" && keyFile != "":
		errs = append(errs, fmt.Errorf("%s: must be set with %s", EnvTLSCert, EnvTLSKey))
	case certFile != "":
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %s and %s are not a certificate and its key: %v", EnvTLSCert, EnvTLSKey, certFile, keyFile, fileError(err)))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, errors.Join(errs...)
}

// checkCreds reads a credentials file and checks that it holds a user JWT
// and a user seed.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileError(err)
	}
	if jwt, err := nkeys.ParseDecoratedJWT(b); err != nil || strings.Count(jwt, ".") != 2 {
		return fmt.Errorf("%s holds no user JWT (is it a .creds file made by nsc?)", path)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("%s holds no user nkey seed", path)
	}
	kp.Wipe()
	return nil
}

// fileError keeps what matters of a file error without the path twice.
func fileError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func splitURLs(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// parseURL parses one server URL as nats.go does: without a scheme it is
// nats://.
func parseURL(u string) (*url.URL, error) {
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	return url.Parse(u)
}
