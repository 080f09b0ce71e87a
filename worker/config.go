// Package worker is the only package that touches NATS messages: it sets up
// the streams and consumers, turns a handler's result into Ack, Term or
// NakWithDelay, replies, dead-letters, keeps the in-memory view current,
// serves the sessions service and the HTTP endpoints, and runs the JWKS
// schedule and the store sweeper. It builds no handler: the composition
// root (cmd/attestd/compose) builds them on the parts of a started worker
// (Parts) and hands them back as small interfaces (Handlers); the worker
// routes each message to one of them.
package worker

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/tat-worker/attest/domain"
)

// Config holds the worker's settings; cmd/attestd fills it from TAT_*
// variables. The handlers get it too (Parts.Config). Start from Defaults(): New fills in no zero value (Validate refuses most).
type Config struct {
	SubjectPrefix string // TAT_SUBJECT_PREFIX
	HTTPAddr      string // TAT_HTTP_ADDR

	ClockSkew     time.Duration // TAT_CLOCK_SKEW
	MaxTokenBytes int           // TAT_MAX_TOKEN_BYTES

	Concurrency int // TAT_WORKER_CONCURRENCY: attest messages in flight per worker
	MaxDeliver  int // TAT_MAX_DELIVER: deliveries before dead letter
	// AckWait (TAT_ACK_WAIT) is the consumers' ack wait: how long a
	// message delivered to a worker that died stays with it before it is
	// redelivered. Short, because a handler's message is kept alive with
	// InProgress every third of it for as long as the handler works
	// (handlerTimeout), so only a dead or cut-off worker lets it run out.
	AckWait       time.Duration
	RetryBase     time.Duration // TAT_RETRY_BASE: first NakWithDelay
	RetryMax      time.Duration // TAT_RETRY_MAX: longest NakWithDelay
	DrainTimeout  time.Duration // TAT_SHUTDOWN_TIMEOUT
	Replicas      int           // TAT_STREAM_REPLICAS
	AttestMaxAge  time.Duration // TAT_ATTEST_MAX_AGE
	AdminMaxAge   time.Duration // TAT_ADMIN_MAX_AGE
	EventsMaxAge  time.Duration // TAT_EVENTS_MAX_AGE (365 days)
	EventsMaxSize int64         // TAT_EVENTS_MAX_BYTES (-1: unlimited)
	StreamMaxSize int64         // TAT_STREAM_MAX_BYTES for the command streams
	DedupWindow   time.Duration // TAT_DEDUP_WINDOW: JetStream duplicate window of the events stream
	// CommandDedupWindow is the duplicate window of the command streams
	// (TAT_COMMAND_DEDUP_WINDOW). Short on purpose: a repeat JetStream drops
	// never reaches the worker, so nobody answers it; a repeat that reaches
	// the worker is answered with the first outcome.
	CommandDedupWindow time.Duration

	OutcomeRetention time.Duration // TAT_OUTCOME_RETENTION
	SweepInterval    time.Duration // TAT_SWEEP_INTERVAL

	JWKSAllowLocal  bool          // TAT_JWKS_ALLOW_LOCAL
	JWKSRefresh     time.Duration // TAT_JWKS_REFRESH
	JWKSMinInterval time.Duration // TAT_JWKS_MIN_INTERVAL
	JWKSMaxBytes    int64         // TAT_JWKS_MAX_BYTES
	JWKSTimeout     time.Duration // TAT_JWKS_TIMEOUT
	JWKSWait        time.Duration // TAT_JWKS_WAIT: how long a request waits for first keys

	SessionIssuer   string // TAT_SESSION_JWT_ISSUER
	SessionAudience string // TAT_SESSION_JWT_AUDIENCE

	// SessionKeyRotation is how often the session-signing key rotates
	// (TAT_SESSION_KEY_ROTATION; 0: only by command).
	SessionKeyRotation time.Duration
	// ReplyPrefixes (TAT_REPLY_PREFIXES) are where replies may go at all:
	// a Tat-Reply-To or a service request's reply subject must start with
	// one of them, each a subject prefix ending in a dot (_INBOX.).
	ReplyPrefixes []string
	// AppReplyPrefixes (TAT_APP_REPLY_PREFIXES, app=prefix,...) hold an
	// attest request that arrived on <prefix>.attest.requests.<app> to its
	// application's prefix, and that prefix to that application's requests.
	AppReplyPrefixes map[string]string
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		SubjectPrefix:      "tat",
		HTTPAddr:           "127.0.0.1:8080",
		ClockSkew:          60 * time.Second,
		MaxTokenBytes:      16 << 10,
		Concurrency:        128,
		MaxDeliver:         10,
		AckWait:            5 * time.Second,
		RetryBase:          500 * time.Millisecond,
		RetryMax:           15 * time.Second,
		DrainTimeout:       25 * time.Second,
		Replicas:           1,
		AttestMaxAge:       7 * 24 * time.Hour,
		AdminMaxAge:        30 * 24 * time.Hour,
		EventsMaxAge:       365 * 24 * time.Hour,
		EventsMaxSize:      -1,
		StreamMaxSize:      -1,
		DedupWindow:        10 * time.Minute,
		CommandDedupWindow: time.Second,
		OutcomeRetention:   7 * 24 * time.Hour,
		SweepInterval:      5 * time.Minute,
		JWKSRefresh:        15 * time.Minute,
		JWKSMinInterval:    30 * time.Second,
		JWKSMaxBytes:       512 << 10,
		JWKSTimeout:        5 * time.Second,
		JWKSWait:           3 * time.Second,
		SessionIssuer:      "urn:tat:worker",
		SessionAudience:    "tat",
		SessionKeyRotation: 30 * 24 * time.Hour,
		ReplyPrefixes:      []string{"_INBOX."},
	}
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if !prefixPattern.MatchString(c.SubjectPrefix) {
		bad("TAT_SUBJECT_PREFIX", "%q is not a subject prefix (tokens of A-Za-z0-9_- joined by dots)", c.SubjectPrefix)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"TAT_ACK_WAIT", c.AckWait}, {"TAT_RETRY_BASE", c.RetryBase}, {"TAT_RETRY_MAX", c.RetryMax},
		{"TAT_SHUTDOWN_TIMEOUT", c.DrainTimeout}, {"TAT_ATTEST_MAX_AGE", c.AttestMaxAge},
		{"TAT_ADMIN_MAX_AGE", c.AdminMaxAge}, {"TAT_EVENTS_MAX_AGE", c.EventsMaxAge},
		{"TAT_DEDUP_WINDOW", c.DedupWindow}, {"TAT_COMMAND_DEDUP_WINDOW", c.CommandDedupWindow}, {"TAT_OUTCOME_RETENTION", c.OutcomeRetention},
		{"TAT_SWEEP_INTERVAL", c.SweepInterval}, {"TAT_JWKS_REFRESH", c.JWKSRefresh},
		{"TAT_JWKS_MIN_INTERVAL", c.JWKSMinInterval}, {"TAT_JWKS_TIMEOUT", c.JWKSTimeout}, {"TAT_JWKS_WAIT", c.JWKSWait},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be a positive duration")
		}
	}
	if c.AckWait > 0 && c.AckWait < time.Second {
		bad("TAT_ACK_WAIT", "must be at least 1s (a working message is kept alive every third of it)")
	}
	if c.ClockSkew < 0 || c.ClockSkew > 10*time.Minute {
		bad("TAT_CLOCK_SKEW", "must be between 0 and 10m")
	}
	if c.MaxTokenBytes < 256 || c.MaxTokenBytes > 64<<10 {
		bad("TAT_MAX_TOKEN_BYTES", "must be between 256 and 65536")
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("TAT_WORKER_CONCURRENCY", "must be between 1 and 1024")
	}
	if c.MaxDeliver < 2 {
		bad("TAT_MAX_DELIVER", "must be at least 2")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("TAT_STREAM_REPLICAS", "must be between 1 and 5")
	}
	if c.JWKSMaxBytes < 1024 {
		bad("TAT_JWKS_MAX_BYTES", "must be at least 1024")
	}
	if c.OutcomeRetention < c.DedupWindow {
		bad("TAT_OUTCOME_RETENTION", "must be at least TAT_DEDUP_WINDOW")
	}
	if c.SessionIssuer == "" || c.SessionAudience == "" {
		bad("TAT_SESSION_JWT_ISSUER/AUDIENCE", "must not be empty")
	}
	errs = append(errs, c.validateReplyPrefixes()...)
	if c.SessionKeyRotation != 0 && c.SessionKeyRotation < domain.MinKeyRotationInterval {
		bad("TAT_SESSION_KEY_ROTATION", "must be 0 (no schedule) or at least %s", domain.MinKeyRotationInterval)
	}
	return errors.Join(errs...)
}

// minHandlerTimeout is the least time a handler gets, whatever the ack
// wait: a redelivered command looks its outcome up in the store first,
// and on FerretDB every lookup is a collection scan (README), which took
// more than 10 s under load with about 12,000 outcomes (attestbench -kill,
// docs/BENCHMARKS.md); a deadline shorter than that turns each retry into
// another scan that is cut off, until the deliveries run out.
const minHandlerTimeout = 30 * time.Second

// handlerTimeout bounds one handler run (and, separately, the dead letter
// and abandoning of a message past MaxDeliver): a handler stuck on a dead
// server gives its message back (NakWithDelay) instead of keeping it alive
// forever. It is not tied to the ack wait: the message is kept alive while
// the handler works. Twice the ack wait, at least minHandlerTimeout, and
// never less than a request that waits for a profile's first JWK set
// (TAT_JWKS_WAIT) and then fetches it again for an unknown kid
// (TAT_JWKS_TIMEOUT) needs, with 2 s for the store. 30 s by default (it
// was twice the old 30 s ack wait, 60 s).
func (c Config) handlerTimeout() time.Duration {
	return max(2*c.AckWait, minHandlerTimeout, c.JWKSWait+c.JWKSTimeout+2*time.Second)
}

// Subjects and stream names under the prefix.
func (c Config) subject(parts ...string) string {
	s := c.SubjectPrefix
	for _, p := range parts {
		s += "." + p
	}
	return s
}

func (c Config) streamName(suffix string) string {
	return upperToken(c.SubjectPrefix) + "_" + suffix
}

func upperToken(s string) string {
	b := []byte(s)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z':
			b[i] = ch - 32
		case ch == '.' || ch == '-':
			b[i] = '_'
		}
	}
	return string(b)
}
