// Command attestctl is the command line for people who run the
// trusted-auth-token worker (attestd): it makes development keys and
// tokens, applies and reads profiles and users, sends attest requests,
// lists, checks and revokes sessions, and watches, replays and audits the
// event log. Everything that talks to the worker goes through the Go
// client (package client) on a connection made from the worker's own
// TAT_NATS_* settings (package natsconn) or a NATS CLI context.
//
// Output is for people by default: tables, or a few "field: value" lines
// for one object. -json prints JSON for scripts instead (one object, or
// one object per line for events), the same whether stdout is a terminal
// or a pipe. Errors go to stderr as "error_type: message" for a refusal
// by the worker, or one sentence. Exit status: 0 on success, 1 on a
// refusal or a failure, 2 on a usage error.
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
	"sort"
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
	natsURL string // -nats; "" when not given (see natsURL in conn.go)
	context string // -context: a NATS CLI context's name
	prefix  string
	timeout time.Duration
	json    bool
}

func defaultGlobals() globals {
	g := globals{prefix: defaultPrefix, timeout: defaultTimeout}
	if v := os.Getenv("TAT_SUBJECT_PREFIX"); v != "" {
		g.prefix = v
	}
	return g
}

// globalFlags are the names register defines: a command's help lists
// them apart from its own flags.
var globalFlags = map[string]bool{"nats": true, "context": true, "prefix": true, "timeout": true, "json": true}

// register adds the global flags to fs with their current values as
// defaults, so a value given before the command name survives.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.natsURL, "nats", g.natsURL, "NATS server `URL`s, comma-separated (default: the context's, else $TAT_NATS_URL, else "+defaultNATSURL+")")
	fs.StringVar(&g.context, "context", g.context, "connect as the NATS CLI context `NAME` (~/.config/nats/context/NAME.json) instead of the TAT_NATS_* settings")
	fs.StringVar(&g.prefix, "prefix", g.prefix, "subject `PREFIX` of the worker (env TAT_SUBJECT_PREFIX)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "how long to wait for the server and for a reply")
	fs.BoolVar(&g.json, "json", g.json, "print JSON for scripts instead of tables")
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
	example  string // one or more lines, each a whole command line
	run      func(c *cli, cmd *command, args []string) error
}

// commands is the command tree, in the order help lists it.
var commands = []*command{
	{path: "keygen", synopsis: "-out NAME [-type ec|rsa|ed25519] [-curve P-256|P-384|P-521] [-bits N] [-force]",
		summary: "write a development key pair: NAME.key.pem (PKCS#8, mode 0600) and NAME.pub.pem (PKIX)",
		example: "attestctl keygen -out dev", run: cmdKeygen},
	{path: "token mint", synopsis: "-key NAME.key.pem -iss ISS -aud AUD -email EMAIL [-jti ID] [-ttl 5m] [-kid KID] [-alg ALG] [-roles a,b] [-claim k=v]...",
		summary: "print a compact JWS signed with a private key, as a third-party issuer would",
		example: "TOKEN=$(attestctl token mint -key dev.key.pem -iss https://dev.example.com/ -aud my-app -email ada@example.com)", run: cmdTokenMint},
	{path: "profile apply", synopsis: "-f FILE [-pem FILE]... [-expected-version N] [-change-id ID]",
		summary: "create or replace a trusted-auth-token profile (FILE: a profile, or a whole profile command)",
		example: "attestctl profile apply -f examples/profile.json -pem dev.pub.pem", run: cmdProfileApply},
	{path: "profile delete", synopsis: "-id PROFILE_ID [-expected-version N] [-change-id ID]",
		summary: "delete a profile",
		example: "attestctl profile delete -id trusted-auth-token-profile-dev", run: cmdProfileDelete},
	{path: "profile get", synopsis: "-id PROFILE_ID",
		summary: "show a profile",
		example: "attestctl profile get -id trusted-auth-token-profile-dev", run: cmdProfileGet},
	{path: "profile list", synopsis: "",
		summary: "list the profiles",
		example: "attestctl profile list", run: cmdProfileList},
	{path: "user apply", synopsis: "-f FILE [-expected-version N] [-change-id ID]",
		summary: "create or replace a user (FILE: a user, or a whole user command)",
		example: "attestctl user apply -f examples/user.json", run: cmdUserApply},
	{path: "user delete", synopsis: "-id USER_ID [-expected-version N] [-change-id ID]",
		summary: "delete a user (and revoke its sessions)",
		example: "attestctl user delete -id user-ada", run: cmdUserDelete},
	{path: "user get", synopsis: "-id USER_ID | -email EMAIL",
		summary: "show a user, by id or by email (matched as attest matches a token's)",
		example: "attestctl user get -email ada@example.com", run: cmdUserGet},
	{path: "user list", synopsis: "[-limit N] [-cursor C | -all]",
		summary: "list users, a page at a time (-all: every page)",
		example: "attestctl user list -limit 50", run: cmdUserList},
	{path: "attest", synopsis: "-profile ID (-token TOKEN | -token-file F) [-duration MINUTES] [-session-token T | -session-jwt J] [-claims JSON] [-request-id ID] [-app NAME]",
		summary: "exchange a trusted token for a user and, with -duration or a session, a session",
		example: `attestctl attest -profile trusted-auth-token-profile-dev -token "$TOKEN" -duration 60`, run: cmdAttest},
	{path: "sessions list", synopsis: "-user USER_ID",
		summary: "list a user's active sessions",
		example: "attestctl sessions list -user user-ada", run: cmdSessionsList},
	{path: "sessions get", synopsis: "-id SESSION_ID",
		summary: "show an active session",
		example: "attestctl sessions get -id session-…", run: cmdSessionsGet},
	{path: "sessions authenticate", synopsis: "(-session-token T | -session-jwt J) [-duration MINUTES]",
		summary: "check a session and get a fresh session JWT",
		example: "attestctl sessions authenticate -session-token tat_st_…", run: cmdSessionsAuthenticate},
	{path: "sessions revoke", synopsis: "-id SESSION_ID | -session-token T | -session-jwt J | -user USER_ID",
		summary: "revoke a session by its token or JWT; operators: by -id, or every active session of a -user",
		example: "attestctl sessions revoke -user user-ada", run: cmdSessionsRevoke},
	{path: "sessions jwks", synopsis: "",
		summary: "show the public keys that sign session JWTs",
		example: "attestctl sessions jwks", run: cmdSessionsJWKS},
	{path: "keys rotate", synopsis: "[-change-id ID]",
		summary: "rotate the workers' session-signing key: a new key is published now and signs after the publish window",
		example: "attestctl keys rotate", run: cmdKeysRotate},
	{path: "keys list", synopsis: "",
		summary: "list the workers' session-signing keys: kid, state (next, signing, verifying, retired) and times",
		example: "attestctl keys list", run: cmdKeysList},
	{path: "events", synopsis: "[-replay | -since T] [-until T] [-type PATTERN]... [-profile ID] [-user ID] [-n COUNT] [-no-follow]",
		summary: "watch events as they come, or replay the audit log (one line per event)",
		example: "attestctl events -replay -no-follow -type 'session.>' -user user-ada", run: cmdEvents},
	{path: "audit check", synopsis: "[-stream attest|admin] [-since T] [-until T] [-from-seq N] [-to-seq N]",
		summary: "check that every sequence of a command stream has exactly one event (exit 1 when one is lost or doubled)",
		example: "attestctl audit check -since 24h", run: cmdAuditCheck},
	{path: "audit summary", synopsis: "[-since 24h|RFC3339] [-until T]",
		summary: "count attest outcomes per profile and error type over a window",
		example: "attestctl audit summary -since 24h", run: cmdAuditSummary},
}

// help is added at init time: it reads the table it belongs to.
func init() {
	commands = append(commands, &command{path: "help", synopsis: "[COMMAND]",
		summary: "show this help, or a command's flags", example: "attestctl help sessions revoke", run: cmdHelp})
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
		if len(args) == 1 || strings.HasPrefix(args[1], "-") {
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
		if line, ok := c.refusal(err); ok {
			fmt.Fprintln(c.stderr, line)
			return exitFailure
		}
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

// flagSet is a command's flags, with the global flags registered and
// aliases (other names of a flag) kept out of the help.
type flagSet struct {
	*flag.FlagSet
	aliases map[string]string // alias -> the flag's main name
}

// flags returns the flag set of cmd, with the global flags registered.
func (c *cli) flags(cmd *command) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("attestctl "+cmd.path, flag.ContinueOnError), aliases: map[string]string{}}
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fs.usage(cmd) }
	c.g.register(fs.FlagSet)
	return fs
}

// alias makes name another name of the flag main (defined already).
func (fs *flagSet) alias(name, main string) {
	f := fs.Lookup(main)
	fs.Var(f.Value, name, "same as -"+main)
	fs.aliases[name] = main
}

// usage prints the command's help: usage line, summary, example, its own
// flags (with their aliases), then the global flags in one line.
func (fs *flagSet) usage(cmd *command) {
	out := fs.Output()
	fmt.Fprintf(out, "usage: %s\n\n%s\n", usageLine(cmd), cmd.summary)
	if cmd.example != "" {
		fmt.Fprintf(out, "\nexample:\n")
		for line := range strings.SplitSeq(cmd.example, "\n") {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
	own := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
	own.SetOutput(out)
	alsoNamed := map[string][]string{}
	for a, m := range fs.aliases {
		alsoNamed[m] = append(alsoNamed[m], "-"+a)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if globalFlags[f.Name] || fs.aliases[f.Name] != "" {
			return
		}
		usage := f.Usage
		if names := alsoNamed[f.Name]; len(names) > 0 {
			sort.Strings(names)
			usage += " (also " + strings.Join(names, ", ") + ")"
		}
		own.Var(f.Value, f.Name, usage)
		own.Lookup(f.Name).DefValue = f.DefValue
	})
	hasOwn := false
	own.VisitAll(func(*flag.Flag) { hasOwn = true })
	if hasOwn {
		fmt.Fprintf(out, "\nflags:\n")
		own.PrintDefaults()
	}
	fmt.Fprintf(out, "\nglobal flags: -json, -nats URL, -context NAME, -prefix PREFIX, -timeout D (see 'attestctl help')\n")
}

// parse parses args with fs, refuses positional arguments and checks the
// global flags.
func (c *cli) parse(fs *flagSet, args []string) error {
	if askedForHelp(args) {
		fs.SetOutput(c.stdout) // asked for: on stdout, like 'attestctl help'
	}
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

// askedForHelp reports whether args ask for a command's help.
func askedForHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--h", "-help", "--help":
			return true
		}
	}
	return false
}

// requireFlags refuses a command line on which one of the named flags is
// missing or empty.
func requireFlags(fs *flagSet, names ...string) error {
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

// isSet reports whether the flag name (or one of its aliases) was given
// on the command line.
func isSet(fs *flagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name || fs.aliases[f.Name] == name {
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
				fmt.Fprintf(c.stdout, "  %-23s %s\n", sub.path, sub.summary)
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
		fmt.Fprintf(w, "  %-23s %s\n", cmd.path, cmd.summary)
	}
	fmt.Fprintf(w, `
global flags (before or after the command; one dash or two):
  -json            print JSON for scripts instead of tables
  -nats URL        NATS server(s) (default: the context's, else $TAT_NATS_URL, else %s)
  -context NAME    connect as the NATS CLI context NAME ($XDG_CONFIG_HOME/nats/context/NAME.json,
                   else ~/.config/nats/context/NAME.json) instead of the TAT_NATS_* settings
  -prefix PREFIX   subject prefix of the worker (default $TAT_SUBJECT_PREFIX, else %s)
  -timeout D       how long to wait for the server and for a reply (default %s)

Connection: the worker's own settings, TAT_NATS_URL, TAT_NATS_CREDS, TAT_NATS_NKEY,
TAT_NATS_USER/TAT_NATS_PASSWORD, TAT_NATS_TLS_CA/_CERT/_KEY, TAT_NATS_INBOX_PREFIX,
and TAT_NATS_JS_API_PREFIX (a JetStream API imported from the worker's account).

Output: tables for people (one object: "field: value" lines), the same on a
terminal or a pipe; -json prints JSON instead: one object (a list's is
{"users": [...], "next_cursor": "..."}), one per line for events, with the
session_token and session_jwt of a reply in clear for whoever asked.
Errors go to stderr: "error_type: message" when the worker refuses. Exit
status: 0 on success, 1 on a refusal or a failure, 2 on a usage error.

Run 'attestctl help COMMAND' for a command's flags and an example.
`, defaultNATSURL, defaultPrefix, defaultTimeout)
}
