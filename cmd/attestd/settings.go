package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/natsconn"
)

// settings are everything attestd reads from its environment, once.
type settings struct {
	Worker worker.Config

	// NATS is TAT_NATS_URL (empty runs the embedded NATS server) and the
	// other TAT_NATS_* settings: credentials, TLS, inbox prefix.
	NATS          natsconn.Settings
	MongoURI      string // TAT_MONGODB_URI: empty runs the embedded FerretDB
	MongoDatabase string // TAT_MONGODB_DATABASE
	DataDir       string // TAT_DATA_DIR
	EmbeddedNATS  string // TAT_EMBEDDED_NATS_ADDR
	EmbeddedMongo string // TAT_EMBEDDED_MONGODB_ADDR
	MasterKey     []byte // TAT_MASTER_KEY (base64 of 32 bytes), or a file in the data dir
	LogLevel      string // TAT_LOG_LEVEL: one of logLevels
	LogFormat     string // TAT_LOG_FORMAT: json or console
	// StoreBatch groups the inserts of concurrent attests into one
	// insertMany per collection (TAT_STORE_BATCH_SIZE, TAT_STORE_BATCH_DELAY).
	StoreBatch mongostore.BatchOptions
}

// logLevels are the zerolog levels TAT_LOG_LEVEL accepts (any case).
var logLevels = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled"}

// loadSettings reads TAT_* variables through getenv and reports every
// problem at once.
func loadSettings(getenv func(string) string) (settings, error) {
	s := settings{
		Worker:        worker.Defaults(),
		MongoDatabase: "tat",
		DataDir:       "./var",
		EmbeddedNATS:  "127.0.0.1:4222",
		EmbeddedMongo: "127.0.0.1:27018",
		LogLevel:      "info",
		LogFormat:     "json",
		StoreBatch:    mongostore.DefaultBatch,
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration like 30s or 15m", name, v))
				return
			}
			*dst = d
		}
	}
	num := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a whole number", name, v))
				return
			}
			*dst = n
		}
	}
	num64 := func(name string, dst *int64) {
		n := int(*dst)
		num(name, &n)
		*dst = int64(n)
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", name, v))
				return
			}
			*dst = b
		}
	}
	list := func(name string, dst *[]string) {
		if v := getenv(name); v != "" {
			*dst = splitList(v)
		}
	}
	pairs := func(name string, dst *map[string]string) {
		if v := getenv(name); v != "" {
			*dst = map[string]string{}
			for _, kv := range splitList(v) {
				k, val, ok := strings.Cut(kv, "=")
				if !ok || k == "" || val == "" {
					errs = append(errs, fmt.Errorf("%s: %q is not name=value", name, kv))
					continue
				}
				(*dst)[k] = val
			}
		}
	}
	w := &s.Worker
	str("TAT_SUBJECT_PREFIX", &w.SubjectPrefix)
	str("TAT_HTTP_ADDR", &w.HTTPAddr)
	dur("TAT_CLOCK_SKEW", &w.ClockSkew)
	num("TAT_MAX_TOKEN_BYTES", &w.MaxTokenBytes)
	num("TAT_WORKER_CONCURRENCY", &w.Concurrency)
	num("TAT_MAX_DELIVER", &w.MaxDeliver)
	dur("TAT_ACK_WAIT", &w.AckWait)
	dur("TAT_RETRY_BASE", &w.RetryBase)
	dur("TAT_RETRY_MAX", &w.RetryMax)
	dur("TAT_SHUTDOWN_TIMEOUT", &w.DrainTimeout)
	num("TAT_STREAM_REPLICAS", &w.Replicas)
	dur("TAT_ATTEST_MAX_AGE", &w.AttestMaxAge)
	dur("TAT_ADMIN_MAX_AGE", &w.AdminMaxAge)
	dur("TAT_EVENTS_MAX_AGE", &w.EventsMaxAge)
	num64("TAT_EVENTS_MAX_BYTES", &w.EventsMaxSize)
	num64("TAT_STREAM_MAX_BYTES", &w.StreamMaxSize)
	dur("TAT_DEDUP_WINDOW", &w.DedupWindow)
	dur("TAT_COMMAND_DEDUP_WINDOW", &w.CommandDedupWindow)
	dur("TAT_OUTCOME_RETENTION", &w.OutcomeRetention)
	dur("TAT_SWEEP_INTERVAL", &w.SweepInterval)
	boolean("TAT_JWKS_ALLOW_LOCAL", &w.JWKSAllowLocal)
	dur("TAT_JWKS_REFRESH", &w.JWKSRefresh)
	dur("TAT_JWKS_MIN_INTERVAL", &w.JWKSMinInterval)
	num64("TAT_JWKS_MAX_BYTES", &w.JWKSMaxBytes)
	dur("TAT_JWKS_TIMEOUT", &w.JWKSTimeout)
	dur("TAT_JWKS_WAIT", &w.JWKSWait)
	str("TAT_SESSION_JWT_ISSUER", &w.SessionIssuer)
	str("TAT_SESSION_JWT_AUDIENCE", &w.SessionAudience)
	list("TAT_REPLY_PREFIXES", &w.ReplyPrefixes)
	pairs("TAT_APP_REPLY_PREFIXES", &w.AppReplyPrefixes)
	dur("TAT_SESSION_KEY_ROTATION", &w.SessionKeyRotation)

	nc, err := natsconn.Load(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	if nc.URL == "" && !nc.Empty() {
		errs = append(errs, errors.New("TAT_NATS_*: credentials, TLS and the inbox prefix are for a NATS server of your own; set TAT_NATS_URL (the embedded server takes none)"))
	}
	s.NATS = nc
	str("TAT_MONGODB_URI", &s.MongoURI)
	str("TAT_MONGODB_DATABASE", &s.MongoDatabase)
	str("TAT_DATA_DIR", &s.DataDir)
	str("TAT_EMBEDDED_NATS_ADDR", &s.EmbeddedNATS)
	str("TAT_EMBEDDED_MONGODB_ADDR", &s.EmbeddedMongo)
	str("TAT_LOG_LEVEL", &s.LogLevel)
	str("TAT_LOG_FORMAT", &s.LogFormat)
	num("TAT_STORE_BATCH_SIZE", &s.StoreBatch.MaxDocs)
	dur("TAT_STORE_BATCH_DELAY", &s.StoreBatch.Delay)
	if s.StoreBatch.MaxDocs < 1 || s.StoreBatch.MaxDocs > 1000 {
		errs = append(errs, errors.New("TAT_STORE_BATCH_SIZE: must be between 1 (no batching) and 1000"))
	}
	if s.StoreBatch.Delay < 0 || s.StoreBatch.Delay > 100*time.Millisecond {
		errs = append(errs, errors.New("TAT_STORE_BATCH_DELAY: must be between 0 and 100ms"))
	}
	if v := getenv("TAT_MASTER_KEY"); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != 32 {
			errs = append(errs, errors.New("TAT_MASTER_KEY: must be 32 random bytes in base64 (openssl rand -base64 32)"))
		}
		s.MasterKey = k
	}
	if !slices.ContainsFunc(logLevels, func(l string) bool { return strings.EqualFold(l, s.LogLevel) }) {
		errs = append(errs, fmt.Errorf("TAT_LOG_LEVEL: %q is not one of %s", s.LogLevel, strings.Join(logLevels, ", ")))
	}
	if s.LogFormat != "json" && s.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("TAT_LOG_FORMAT: %q is not json or console", s.LogFormat))
	}
	if err := w.Validate(); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// masterKey returns TAT_MASTER_KEY, or the key in <data dir>/master.key,
// made on first start (mode 0600). A fleet must share TAT_MASTER_KEY.
func (s settings) masterKey() ([]byte, error) {
	if s.MasterKey != nil {
		return s.MasterKey, nil
	}
	path := filepath.Join(s.DataDir, "master.key")
	if b, err := os.ReadFile(path); err == nil {
		k, err := base64.StdEncoding.DecodeString(string(trimSpace(b)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not 32 bytes of base64", path)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := randRead(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
