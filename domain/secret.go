package domain

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Secret holds a bearer secret: a raw trusted token, a session token or a
// session JWT. Every way of printing it (String, GoString, JSON, slog,
// zerolog's Interface, which marshals JSON) yields "REDACTED", so a log line
// or an event cannot carry it by accident. Reveal returns the value for the
// few places that must use it: verification and the reply.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.v }

// Empty reports whether no secret is held.
func (s Secret) Empty() bool { return s.v == "" }

const redacted = "REDACTED"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON never writes the value; replies use RevealJSON fields instead.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// UnmarshalJSON reads a JSON string (or null, as empty).
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		s.v = ""
		return nil
	}
	return json.Unmarshal(b, &s.v)
}

// Format prints REDACTED for every verb: fmt calls String only for
// %v %s %q %x %X and would print the field itself for %d, %t, %p and others.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", redacted)
		return
	}
	io.WriteString(f, redacted)
}
