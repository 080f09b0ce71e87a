package client

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Secret holds a bearer secret: the trusted token of an attest request, a
// session_token or a session_jwt. Every way of printing it yields REDACTED:
// String, GoString, every fmt verb (%v %+v %#v %s %q %d %x ...), JSON,
// text marshaling and slog, also as a field of a struct printed or
// marshaled whole, so a request or a result can be logged safely. Reveal
// returns the value; the client uses it only to build the payload it sends.
//
// A Secret decodes from a JSON string (replies carry session_token and
// session_jwt as strings); null decodes as empty.
//
// The value is held behind a pointer, so that even the verbs fmt handles
// before any method (%p, or a Secret in an unexported field of another
// struct) print an address, never the value. Hence == compares identity,
// not value: compare Reveal() results (with crypto/subtle) if you must.
type Secret struct{ v *string }

// NewSecret wraps s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the secret value. Do not log it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// Empty reports whether no secret is held.
func (s Secret) Empty() bool { return s.Reveal() == "" }

const redacted = "REDACTED"

// String returns REDACTED.
func (s Secret) String() string { return redacted }

// GoString returns REDACTED.
func (s Secret) GoString() string { return redacted }

// Format prints REDACTED for every verb (fmt would otherwise print the
// underlying string for verbs that do not call String, such as %d or %x on
// a struct).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", redacted)
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// LogValue keeps log/slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON writes "REDACTED", never the value: the client builds the
// payloads it sends from Reveal, so marshaling a request or a result (to
// log it) cannot leak the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText writes REDACTED, for encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalJSON reads a JSON string, or null as empty.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Secret{}
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = NewSecret(v)
	return nil
}
