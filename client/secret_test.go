package client_test

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

	"github.com/tat-worker/attest/client"
)

const secretValue = "tat_st_c2VjcmV0LXNlc3Npb24tdG9rZW4tdmFsdWU"

// holder keeps a Secret in an unexported field, where fmt cannot call its
// methods.
type holder struct{ s client.Secret }

// TestSecretPrintsRedacted: however a Secret, or a request or result
// holding one, is printed, marshaled or logged, the value never shows.
func TestSecretPrintsRedacted(t *testing.T) {
	t.Parallel()
	s := client.NewSecret(secretValue)
	req := client.AttestRequest{RequestID: "r-1", ProfileID: "p-1", Token: s, SessionToken: s, SessionJWT: s}
	res := client.AttestResult{StatusCode: 200, SessionToken: s, SessionJWT: s}
	auth := client.AuthenticateRequest{SessionToken: s}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%o", "%e", "%p", "%08d", "%-10v", "%T"}
	for _, v := range []any{s, &s, req, &req, res, auth, client.RevokeRequest{SessionJWT: s}, holder{s}, &holder{s}, map[string]any{"t": s}, []client.Secret{s}} {
		for _, verb := range verbs {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, secretValue) || strings.Contains(got, "c2VjcmV0") {
				t.Errorf("fmt.Sprintf(%q, %T) = %q: the secret leaks", verb, v, got)
			}
		}
	}
	for name, out := range map[string]string{
		"Sprint":           fmt.Sprint(s),
		"String":           s.String(),
		"GoString":         s.GoString(),
		"error":            fmt.Errorf("attest %v: %w", s, errors.New("x")).Error(),
		"json":             string(mustMarshal(t, s)),
		"json of request":  string(mustMarshal(t, req)),
		"json of result":   string(mustMarshal(t, res)),
		"json of map":      string(mustMarshal(t, map[string]any{"t": s})),
		"slog text":        logWith(slog.NewTextHandler, slog.Any("token", s)),
		"slog json":        logWith(slog.NewJSONHandler, slog.Any("token", s)),
		"slog of request":  logWith(slog.NewJSONHandler, slog.Any("req", req)),
		"slog text of req": logWith(slog.NewTextHandler, slog.Any("req", req)),
	} {
		if strings.Contains(out, secretValue) || !strings.Contains(out, "REDACTED") {
			t.Errorf("%s: %q", name, out)
		}
	}
	if got := fmt.Sprintf("%v|%q", s, s); got != `REDACTED|"REDACTED"` {
		t.Errorf("%%v|%%q = %s", got)
	}
	if got := string(mustMarshal(t, req)); got != `{"RequestID":"r-1","ProfileID":"p-1","Token":"REDACTED","SessionDurationMinutes":0,"SessionCustomClaims":null,"SessionToken":"REDACTED","SessionJWT":"REDACTED"}` {
		t.Errorf("json of the request = %s", got)
	}
	if b, _ := s.MarshalText(); string(b) != "REDACTED" {
		t.Errorf("MarshalText = %s", b)
	}
}

// TestSecretDecodes: replies carry secrets as JSON strings.
func TestSecretDecodes(t *testing.T) {
	t.Parallel()
	var r client.AttestResult
	if err := json.Unmarshal([]byte(`{"status_code":200,"session_token":"`+secretValue+`","session_jwt":null}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.SessionToken.Reveal() != secretValue || !r.SessionJWT.Empty() || r.SessionJWT.Reveal() != "" {
		t.Errorf("decoded %q, %q", r.SessionToken.Reveal(), r.SessionJWT.Reveal())
	}
	var s client.Secret
	for _, bad := range []string{`42`, `{}`, `["x"]`, `true`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
	var zero client.Secret
	if !zero.Empty() || zero.Reveal() != "" || !client.NewSecret("").Empty() {
		t.Error("the zero Secret is not empty")
	}
	var back client.Secret // a JSON round trip redacts
	if err := json.Unmarshal(mustMarshal(t, client.NewSecret(secretValue)), &back); err != nil || back.Reveal() != "REDACTED" {
		t.Errorf("round trip = %q, %v", back.Reveal(), err)
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

// logWith logs one record with attr and returns the output.
func logWith[H slog.Handler](newHandler func(w io.Writer, opts *slog.HandlerOptions) H, attr slog.Attr) string {
	var buf bytes.Buffer
	slog.New(newHandler(&buf, nil)).LogAttrs(context.Background(), slog.LevelInfo, "m", attr)
	return buf.String()
}
