package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tat-worker/attest/worker/natsconn"
)

// natsContext is a NATS CLI context (nats context add/edit): a JSON file
// $XDG_CONFIG_HOME/nats/context/NAME.json, else
// ~/.config/nats/context/NAME.json. attestctl reads the fields that map
// onto its own settings and refuses a context that relies on one it
// cannot honour, rather than connect in a way the context did not mean.
type natsContext struct {
	name string
	path string

	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`
	JSAPIPrefix string `json:"jetstream_api_prefix"`
	JSDomain    string `json:"jetstream_domain"`

	// Not supported: a context that sets one is refused.
	Token      string `json:"token"`
	NSC        string `json:"nsc"`
	UserJWT    string `json:"user_jwt"`
	SocksProxy string `json:"socks_proxy"`
	TLSFirst   bool   `json:"tls_first"`
	WinCert    string `json:"windows_cert_store"`
}

// contextName is what a context may be called: one file name, no path.
var contextName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// contextDir is where the NATS CLI keeps its contexts.
func contextDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nats", "context"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("NATS context: no home directory to find it in: %w", err)
	}
	return filepath.Join(home, ".config", "nats", "context"), nil
}

// loadNATSContext reads the context name.
func loadNATSContext(name string) (*natsContext, error) {
	if !contextName.MatchString(name) || strings.Trim(name, ".") == "" {
		return nil, usageErrorf("-context %q: a context name is a file name (A-Za-z0-9_.-), not a path", name)
	}
	dir, err := contextDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("NATS context %q: no %s (make one with 'nats context add %s --server URL ...')", name, path, name)
	}
	if err != nil {
		return nil, fmt.Errorf("NATS context %q: %w", name, err)
	}
	nctx := &natsContext{name: name, path: path}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(nctx); err != nil {
		return nil, fmt.Errorf("NATS context %q: %s is not a context file: %v", name, path, err)
	}
	var unsupported []string
	for field, set := range map[string]bool{
		"token": nctx.Token != "", "nsc": nctx.NSC != "", "user_jwt": nctx.UserJWT != "",
		"socks_proxy": nctx.SocksProxy != "", "tls_first": nctx.TLSFirst, "windows_cert_store": nctx.WinCert != "",
	} {
		if set {
			unsupported = append(unsupported, field)
		}
	}
	if len(unsupported) > 0 {
		slices.Sort(unsupported)
		return nil, fmt.Errorf("NATS context %q sets %s, which attestctl does not support; it takes url, user/password, creds, nkey, cert/key/ca, inbox_prefix, jetstream_api_prefix and jetstream_domain (or use the TAT_NATS_* settings)",
			name, strings.Join(unsupported, ", "))
	}
	if nctx.JSAPIPrefix != "" && nctx.JSDomain != "" {
		return nil, fmt.Errorf("NATS context %q sets both jetstream_api_prefix and jetstream_domain; keep one", name)
	}
	for _, p := range []*string{&nctx.Creds, &nctx.NKey, &nctx.Cert, &nctx.Key, &nctx.CA} {
		*p = expandHome(*p)
	}
	return nctx, nil
}

// expandHome turns a leading ~/ into the home directory, as the NATS CLI
// does for the files a context names.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// getenv answers for the TAT_NATS_* settings from the context, so that
// natsconn.Load checks a context exactly as it checks the settings.
func (n *natsContext) getenv(key string) string {
	switch key {
	case natsconn.EnvURL:
		return n.URL
	case natsconn.EnvUser:
		return n.User
	case natsconn.EnvPassword:
		return n.Password
	case natsconn.EnvCreds:
		return n.Creds
	case natsconn.EnvNKey:
		return n.NKey
	case natsconn.EnvTLSCert:
		return n.Cert
	case natsconn.EnvTLSKey:
		return n.Key
	case natsconn.EnvTLSCA:
		return n.CA
	case natsconn.EnvInboxPrefix:
		return n.InboxPrefix
	case envJSAPIPrefix:
		if n.JSDomain != "" {
			return "$JS." + n.JSDomain + ".API"
		}
		return n.JSAPIPrefix
	}
	return ""
}

// rename rewrites messages that name a TAT_NATS_* setting to name the
// context's field instead.
func (n *natsContext) rename() *strings.Replacer {
	field := func(f string) string { return fmt.Sprintf("%q of context %q", f, n.name) }
	return strings.NewReplacer(
		natsconn.EnvURL, field("url"),
		natsconn.EnvCreds, field("creds"),
		natsconn.EnvNKey, field("nkey"),
		natsconn.EnvUser, field("user"),
		natsconn.EnvPassword, field("password"),
		natsconn.EnvTLSCA, field("ca"),
		natsconn.EnvTLSCert, field("cert"),
		natsconn.EnvTLSKey, field("key"),
		natsconn.EnvInboxPrefix, field("inbox_prefix"),
	)
}
