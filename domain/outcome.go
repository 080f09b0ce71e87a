package domain

import (
	"encoding/json"
	"errors"
	"time"
)

// ErrConflict is what stores return when an insert meets an existing key:
// the one signal correctness rests on (idempotency, replay, revisions).
var ErrConflict = errors.New("conflict: key exists")

// Outcome is the first and only result of a command, stored under its key
// before its event is published: the reply without bearer secrets, the
// session whose token the reply re-derives, and the event (an outbox).
type Outcome struct {
	Key string // "<kind>:<command id>"
	// Fingerprint identifies the request behind the id (a hash of what it
	// asked, secrets included). A later command with the same id but
	// another fingerprint is someone else's: it never gets this outcome.
	Fingerprint string
	StatusCode  int
	// ErrorType is the reply's error_type ("" for a success), kept beside
	// the reply so that nobody decodes the reply just to read it.
	ErrorType string
	Reply     json.RawMessage
	SessionID string
	// SecretsUntil is when the trusted token behind a session outcome
	// stops being valid (exp plus skew). A repeat of the request answered
	// from this outcome gets the session token and a session JWT only until
	// then; the delivery that made the outcome always gets them.
	SecretsUntil time.Time
	Event        Event
	Published    bool
	CreatedAt    time.Time
}

// ReplayClaimGrace is how long a replay claim is kept past its token's
// expiry (plus skew) before the sweeper or a TTL index may delete it. It is
// longer than RedeliveryLookback, so a redelivery judged as of an earlier
// moment always still finds every claim that was live at that moment.
const ReplayClaimGrace = time.Hour

// RedeliveryLookback bounds how far back a redelivered attest is judged:
// as of the moment the stream stored it, but never earlier than this before
// now. Token times and the replay claim are judged at that one instant.
const RedeliveryLookback = 30 * time.Minute
