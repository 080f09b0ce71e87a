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
	Reply       json.RawMessage
	SessionID   string
	Event       Event
	Published   bool
	CreatedAt   time.Time
}
