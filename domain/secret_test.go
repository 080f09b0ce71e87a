package domain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

const secretValue = "tat_st_c2VjcmV0LXNlc3Npb24tdG9rZW4tdmFsdWU"

func TestSecretPrintsRedacted(t *testing.T) {
	t.Parallel()
	s := domain.NewSecret(secretValue)
	req := domain.AttestRequest{ProfileID: "p-1", Token: s, SessionToken: s, SessionJWT: s}
	for _, tc := range []struct {
		name string
		out  func() string
		want string // exact output, "" to only check for the secret
	}{
		{name: "String", out: s.String, want: "REDACTED"},
		{name: "GoString", out: s.GoString, want: "REDACTED"},
		{name: "fmt %v", out: func() string { return fmt.Sprintf("%v", s) }, want: "REDACTED"},
		{name: "fmt %+v", out: func() string { return fmt.Sprintf("%+v", s) }, want: "REDACTED"},
		{name: "fmt %s", out: func() string { return fmt.Sprintf("%s", s) }, want: "REDACTED"},
		{name: "fmt %#v", out: func() string { return fmt.Sprintf("%#v", s) }, want: "REDACTED"},
		{name: "fmt %q", out: func() string { return fmt.Sprintf("%q", s) }, want: `"REDACTED"`},
		{name: "fmt Sprint", out: func() string { return fmt.Sprint(s) }, want: "REDACTED"},
		{name: "fmt %v of a pointer", out: func() string { return fmt.Sprintf("%v", &s) }, want: "REDACTED"},
		{name: "fmt %v of a struct holding it", out: func() string { return fmt.Sprintf("%v", req) }},
		{name: "fmt %+v of a struct holding it", out: func() string { return fmt.Sprintf("%+v", req) }},
		{name: "fmt %#v of a struct holding it", out: func() string { return fmt.Sprintf("%#v", req) }},
		{name: "fmt %v of a map holding it", out: func() string { return fmt.Sprintf("%v", map[string]any{"token": s}) }},
		{name: "error wrapping it with %v", out: func() string { return fmt.Errorf("attest %v: %w", s, errors.New("x")).Error() }},
		{name: "json.Marshal", out: func() string { return string(mustMarshal(t, s)) }, want: `"REDACTED"`},
		{name: "json.Marshal of a pointer", out: func() string { return string(mustMarshal(t, &s)) }, want: `"REDACTED"`},
		{
			name: "json.Marshal of the request",
			out:  func() string { return string(mustMarshal(t, req)) },
			want: `{"profile_id":"p-1","token":"REDACTED","session_token":"REDACTED","session_jwt":"REDACTED"}`,
		},
		{name: "json.Marshal of a map holding it", out: func() string { return string(mustMarshal(t, map[string]any{"t": s})) }, want: `{"t":"REDACTED"}`},
		{name: "slog text", out: func() string { return logWith(slog.NewTextHandler, slog.Any("token", s)) }, want: "level=INFO msg=m token=REDACTED\n"},
		{name: "slog JSON", out: func() string { return logWith(slog.NewJSONHandler, slog.Any("token", s)) }, want: `{"level":"INFO","msg":"m","token":"REDACTED"}` + "\n"},
		{name: "slog text of a pointer", out: func() string { return logWith(slog.NewTextHandler, slog.Any("token", &s)) }},
		{name: "slog text of the request", out: func() string { return logWith(slog.NewTextHandler, slog.Any("req", req)) }},
		{name: "slog JSON of the request", out: func() string { return logWith(slog.NewJSONHandler, slog.Any("req", req)) }},
		{name: "slog group", out: func() string { return logWith(slog.NewJSONHandler, slog.Group("g", slog.Any("token", s))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.out()
			if strings.Contains(got, secretValue) || strings.Contains(got, "c2VjcmV0") {
				t.Fatalf("output carries the secret: %s", got)
			}
			if !strings.Contains(got, "REDACTED") {
				t.Errorf("output %q does not say REDACTED", got)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("output = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSecretPrintsRedactedWithEveryVerb: a Secret is "REDACTED" however it
// is printed. fmt uses String only for %v %s %q %x %X; for other verbs
// (%d, %t, %o, ...) it prints the struct and its field, so without a Format
// method these leak the value. (%p is left out: fmt prints the value for it
// before consulting any method, which only a change of representation can
// stop.)
func TestSecretPrintsRedactedWithEveryVerb(t *testing.T) {
	t.Parallel()
	s := domain.NewSecret(secretValue)
	for _, verb := range []string{"%v", "%s", "%q", "%x", "%X", "%d", "%t", "%o", "%e", "%08d", "%-10v"} {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			if got := fmt.Sprintf(verb, s); strings.Contains(got, secretValue) {
				t.Errorf("fmt.Sprintf(%q, secret) = %q: the secret leaks", verb, got)
			}
			if got := fmt.Sprintf(verb, domain.AttestRequest{Token: s}); strings.Contains(got, secretValue) {
				t.Errorf("fmt.Sprintf(%q, request) = %q: the secret leaks", verb, got)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logWith logs one record with attr through a handler made by newHandler,
// without the time, and returns the output.
func logWith[H slog.Handler](newHandler func(w io.Writer, opts *slog.HandlerOptions) H, attr slog.Attr) string {
	var buf bytes.Buffer
	dropTime := func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}
	slog.New(newHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})).LogAttrs(context.Background(), slog.LevelInfo, "m", attr)
	return buf.String()
}

func TestSecretUnmarshalJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "string", in: `"` + secretValue + `"`, want: secretValue},
		{name: "empty string", in: `""`, want: ""},
		{name: "escaped string", in: `"a\u0062\n"`, want: "ab\n"},
		{name: "null", in: `null`, want: ""},
		{name: "number", in: `42`, wantErr: true},
		{name: "object", in: `{"v":"x"}`, wantErr: true},
		{name: "array", in: `["x"]`, wantErr: true},
		{name: "bool", in: `true`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := domain.NewSecret("previous")
			err := json.Unmarshal([]byte(tc.in), &s)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal(%s) accepted %q", tc.in, s.Reveal())
				}
				if strings.Contains(err.Error(), "previous") {
					t.Errorf("the error carries the old value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if s.Reveal() != tc.want || s.Empty() != (tc.want == "") {
				t.Errorf("Reveal, Empty = %q, %v; want %q", s.Reveal(), s.Empty(), tc.want)
			}
		})
	}
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	if s := domain.NewSecret(secretValue); s.Reveal() != secretValue || s.Empty() {
		t.Errorf("NewSecret(%q): Reveal, Empty = %q, %v", secretValue, s.Reveal(), s.Empty())
	}
	var zero domain.Secret
	if zero.Reveal() != "" || !zero.Empty() {
		t.Errorf("zero Secret: Reveal, Empty = %q, %v", zero.Reveal(), zero.Empty())
	}
	// A JSON round trip redacts: the value is not recovered from the JSON.
	var back domain.Secret
	if err := json.Unmarshal(mustMarshal(t, domain.NewSecret(secretValue)), &back); err != nil || back.Reveal() != "REDACTED" {
		t.Errorf("round trip = %q, %v", back.Reveal(), err)
	}
}
