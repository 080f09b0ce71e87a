// Command attestctl is the command line for people who run the
// trusted-auth-token worker (attestd): it makes development keys and
// tokens, applies profiles and users, sends attest requests, calls the
// sessions service and watches or replays the event log, all over NATS as
// the wire contract (docs/CONTRACT.md) describes.
//
// Replies are printed as indented JSON on stdout, events one per line;
// errors go to stderr. Exit status: 0 on success, 1 on a failure or a reply
// whose status_code is 400 or more, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Defaults of the global flags, before the environment is read.
const (
	defaultNATSURL = "nats://127.0.0.1:4222"
	defaultPrefix  = "tat"
	defaultTimeout = 10 * time.Second
)

// prefixPattern is the worker's rule for TAT_SUBJECT_PREFIX.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// globals are the flags every command takes, before or after its name.
type globals struct {
	natsURL string
	prefix  string
	timeout time.Duration
}

func defaultGlobals() globals {
	g := globals{natsURL: defaultNATSURL, prefix: defaultPrefix, timeout: defaultTimeout}
	if v := os.Getenv("TAT_NATS_URL"); v != "" {
		g.natsURL = v
	}
	if v := os.Getenv("TAT_SUBJECT_PREFIX"); v != "" {
		g.prefix = v
	}
	return g
}

// register adds the global flags to fs with their current values as
// defaults, so a value given before the command name survives.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.natsURL, "nats", g.natsURL, "NATS server `URL` (env TAT_NATS_URL)")
	fs.StringVar(&g.prefix, "prefix", g.prefix, "subject `PREFIX` (env TAT_SUBJECT_PREFIX)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "how long to wait for the server and for a reply")
}

func (g globals) validate() error {
	if !prefixPattern.MatchString(g.prefix) {
		return usageErrorf("-prefix %q is not a subject prefix (tokens of A-Za-z0-9_- joined by dots)", g.prefix)
	}
	if g.timeout <= 0 {
		return usageErrorf("-timeout must be positive")
	}
	return nil
}

// subject joins the prefix and parts with dots.
func (g globals) subject(parts ...string) string {
	return strings.Join(append([]string{g.prefix}, parts...), ".")
}

// streamName is the worker's stream name for suffix: the prefix upper-cased
// with dots and dashes turned into underscores, e.g. TAT_EVENTS.
func (g globals) streamName(suffix string) string {
	b := []byte(g.prefix)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z':
			b[i] = ch - 'a' + 'A'
		case ch == '.' || ch == '-':
			b[i] = '_'
		}
	}
	return string(b) + "_" + suffix
}

// cli is what a command runs with.
type cli struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	g      globals
}

// command is one leaf of the command tree, e.g. "profile apply".
type command struct {
	path     string // words after "attestctl"
	synopsis string // the flags, for usage lines
	summary  string
	run      func(c *cli, cmd *command, args []string) error
}

// commands is the command tree, in the order help lists it.
var commands = []*command{
	{path: "keygen", synopsis: "-out NAME [-type ec|rsa|ed25519] [-curve P-256|P-384|P-521] [-bits N] [-force]",
		summary: "write a development key pair: NAME.key.pem (PKCS#8, mode 0600) and NAME.pub.pem (PKIX)", run: cmdKeygen},
	{path: "token mint", synopsis: "-key NAME.key.pem -iss ISS -aud AUD -email EMAIL [-jti ID] [-ttl 5m] [-kid KID] [-alg ALG] [-roles a,b] [-claim k=v]...",
		summary: "print a compact JWS signed with a private key, as a third-party issuer would", run: cmdTokenMint},
	{path: "profile apply", synopsis: "-f FILE [-pem FILE]... [-expected-version N] [-change-id ID]",
		summary: "upsert a trusted-auth-token profile (FILE: a profile object or a whole profile command)", run: cmdProfileApply},
	{path: "profile delete", synopsis: "-id PROFILE_ID [-expected-version N] [-change-id ID]",
		summary: "delete a profile", run: cmdProfileDelete},
	{path: "user apply", synopsis: "-f FILE [-expected-version N] [-change-id ID]",
		summary: "upsert a user (FILE: a user object or a whole user command)", run: cmdUserApply},
	{path: "user delete", synopsis: "-id USER_ID [-expected-version N] [-change-id ID]",
		summary: "delete a user", run: cmdUserDelete},
	{path: "attest", synopsis: "-profile ID (-token TOKEN | -token-file F) [-duration MINUTES] [-session-token T | -session-jwt J] [-claims JSON] [-request-id ID] [-app NAME]",
		summary: "exchange a trusted token for a user and, with -duration or a session, a session", run: cmdAttest},
	{path: "events", synopsis: "[-replay] [-since 1h|RFC3339] [-filter PATTERN] [-n COUNT] [-no-follow]",
		summary: "print events (one JSON object per line) as they arrive, or replay the audit log", run: cmdEvents},
	{path: "audit check", synopsis: "[-stream attest|admin] [-since T] [-until T] [-from-seq N] [-to-seq N] [-json]",
		summary: "check that every sequence of the command stream has exactly one event (exit 1 when one is lost or doubled)", run: cmdAuditCheck},
	{path: "audit summary", synopsis: "[-since 24h|RFC3339] [-until T] [-json]",
		summary: "count attest outcomes per profile and error type over a window", run: cmdAuditSummary},
	{path: "sessions authenticate", synopsis: "(-session-token T | -session-jwt J) [-duration MINUTES]",
		summary: "check a session and get a fresh session JWT", run: cmdSessionsAuthenticate},
	{path: "sessions revoke", synopsis: "-session-id ID | -session-token T | -session-jwt J",
		summary: "revoke a session", run: cmdSessionsRevoke},
	{path: "sessions jwks", synopsis: "",
		summary: "print the public keys that sign session JWTs", run: cmdSessionsJWKS},
	{path: "keys rotate", synopsis: "[-change-id ID]",
		summary: "rotate the workers' session-signing key: a new key is published now and signs after the publish window", run: cmdKeysRotate},
	{path: "keys list", synopsis: "",
		summary: "list the workers' session-signing keys: kid, state (next, signing, verifying, retired) and times", run: cmdKeysList},
}

// help is added at init time: it reads the table it belongs to.
func init() {
	commands = append(commands, &command{path: "help", synopsis: "[COMMAND]",
		summary: "show this help, or a command's flags", run: cmdHelp})
}

// run is the whole program: it parses args, runs one command and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{ctx: ctx, stdin: os.Stdin, stdout: stdout, stderr: stderr, g: defaultGlobals()}

	top := flag.NewFlagSet("attestctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	c.g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "attestctl: %v\n", err)
		fmt.Fprintln(stderr, "Run 'attestctl help' for usage.")
		return exitUsage
	}
	rest := top.Args()
	if len(rest) == 0 {
		writeUsage(stderr)
		return exitUsage
	}
	cmd, n := lookup(rest)
	if cmd == nil {
		fmt.Fprintf(stderr, "attestctl: %s\n", unknownCommand(rest))
		fmt.Fprintln(stderr, "Run 'attestctl help' for usage.")
		return exitUsage
	}
	return c.report(cmd, cmd.run(c, cmd, rest[n:]))
}

// lookup finds the command named by the leading words of args and how many
// words it took.
func lookup(args []string) (*command, int) {
	for _, cmd := range commands {
		words := strings.Fields(cmd.path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.path {
			return cmd, len(words)
		}
	}
	return nil, 0
}

// subcommands lists the commands of a group such as "profile".
func subcommands(group string) []*command {
	var out []*command
	for _, cmd := range commands {
		if g, _, ok := strings.Cut(cmd.path, " "); ok && g == group {
			out = append(out, cmd)
		}
	}
	return out
}

func unknownCommand(args []string) string {
	var subs []string
	for _, cmd := range subcommands(args[0]) {
		subs = append(subs, strings.TrimPrefix(cmd.path, args[0]+" "))
	}
	if len(subs) > 0 {
		if len(args) == 1 {
			return fmt.Sprintf("%s needs a subcommand: %s", args[0], strings.Join(subs, ", "))
		}
		return fmt.Sprintf("unknown command %q; %s has: %s", args[0]+" "+args[1], args[0], strings.Join(subs, ", "))
	}
	return fmt.Sprintf("unknown command %q", args[0])
}

// report turns a command's error into the exit status, printing it.
func (c *cli) report(cmd *command, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &ue):
		if ue.reported {
			return exitUsage // the flag package printed it and the flags
		}
		fmt.Fprintf(c.stderr, "attestctl %s: %s\n", cmd.path, ue.msg)
		fmt.Fprintf(c.stderr, "usage: %s\nRun 'attestctl help %s' for the flags.\n", usageLine(cmd), cmd.path)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "attestctl %s: %v\n", cmd.path, err)
		return exitFailure
	}
}

func usageLine(cmd *command) string {
	return strings.TrimSpace("attestctl " + cmd.path + " " + cmd.synopsis)
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct {
	msg      string
	reported bool // the flag package printed it already
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelpShown ends a command after -h printed its flags: exit 0.
var errHelpShown = errors.New("help shown")

// replyError ends a command whose reply, printed on stdout, has a
// status_code of 400 or more: exit 1.
type replyError struct {
	status    int
	errorType string
}

func (e *replyError) Error() string {
	if e.errorType == "" {
		return fmt.Sprintf("the reply has status_code %d", e.status)
	}
	return fmt.Sprintf("the reply has status_code %d (%s)", e.status, e.errorType)
}

// flags returns the flag set of cmd, with the global flags registered.
func (c *cli) flags(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("attestctl "+cmd.path, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: %s\n\n%s\n\nflags:\n", usageLine(cmd), cmd.summary)
		fs.PrintDefaults()
	}
	c.g.register(fs)
	return fs
}

// parse parses args with fs, refuses positional arguments and checks the
// global flags.
func (c *cli) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return &usageError{msg: err.Error(), reported: true}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return c.g.validate()
}

// requireFlags refuses a command line on which one of the named flags is
// missing or empty.
func requireFlags(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || f.Value.String() == "" {
			missing = append(missing, "-"+n)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("missing required flag: %s", strings.Join(missing, ", "))
	}
	return nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func cmdHelp(c *cli, _ *command, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		writeUsage(c.stdout)
		return nil
	}
	cmd, n := lookup(args)
	if cmd == nil && len(args) == 1 {
		if subs := subcommands(args[0]); len(subs) > 0 {
			for _, sub := range subs {
				fmt.Fprintf(c.stdout, "  %-22s %s\n", sub.path, sub.summary)
			}
			return nil
		}
	}
	if cmd == nil || n != len(args) {
		return usageErrorf("%s", unknownCommand(args))
	}
	if cmd.path == "help" {
		writeUsage(c.stdout)
		return nil
	}
	// Flags are defined where they are parsed: let -h print them, to stdout.
	shown := *c
	shown.stderr = c.stdout
	if err := cmd.run(&shown, cmd, []string{"-h"}); !errors.Is(err, errHelpShown) {
		return fmt.Errorf("help %s: %v", cmd.path, err)
	}
	return nil
}

func writeUsage(w io.Writer) {
	fmt.Fprint(w, `attestctl is the command line of the trusted-auth-token worker (attestd).

usage: attestctl [global flags] COMMAND [flags]

commands:
`)
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-22s %s\n", cmd.path, cmd.summary)
	}
	fmt.Fprintf(w, `
global flags (before or after the command):
  -nats URL        NATS server (default $TAT_NATS_URL, else %s)
  -prefix PREFIX   subject prefix (default $TAT_SUBJECT_PREFIX, else %s)
  -timeout D       how long to wait for the server and for a reply (default %s)

Replies are printed as indented JSON on stdout, events one JSON object per
line; errors go to stderr. Exit status: 0 on success, 1 on a failure or a
reply with status_code >= 400, 2 on a usage error.

Run 'attestctl help COMMAND' for a command's flags.
`, defaultNATSURL, defaultPrefix, defaultTimeout)
}
