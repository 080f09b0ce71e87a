package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// attestWire mirrors domain.AttestRequest with its secrets as plain
// strings: the form a publisher sends, so an accepted request can be
// written back out with its secrets revealed.
type attestWire struct {
	RequestID              string          `json:"request_id,omitempty"`
	ProfileID              string          `json:"profile_id"`
	Token                  string          `json:"token"`
	SessionDurationMinutes *int            `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims    json.RawMessage `json:"session_custom_claims,omitempty"`
	SessionToken           string          `json:"session_token"`
	SessionJWT             string          `json:"session_jwt"`
}

func attestSeeds() []string {
	return []string{
		`{"request_id":"r-1","profile_id":"trusted-auth-token-profile-1","token":"eyJhbGciOiJFZERTQSJ9.e30.c2ln","session_duration_minutes":60,"session_custom_claims":{"plan":"pro"}}`,
		`{"profile_id":"p","token":"t"}`,
		`{"profile_id":"p","token":"t","session_token":"tat_st_x","session_duration_minutes":5}`,
		`{"profile_id":"p","token":"t","session_jwt":"eyJ.x.y","session_custom_claims":{"plan":null}}`,
		`{"profile_id":"p","token":"t","session_token":"a","session_jwt":"b"}`,
		`{"profile_id":"p","token":"t","session_duration_minutes":4}`,
		`{"profile_id":"p","token":"t","session_duration_minutes":527041}`,
		`{"profile_id":"p","token":"t","session_duration_minutes":1e3}`,
		`{"profile_id":"p","token":"t","session_custom_claims":{"iss":"x"}}`,
		`{"profile_id":"p","token":"t","session_custom_claims":[1]}`,
		`{"profile_id":"p","token":"t","session_custom_claims":null}`,
		`{"profile_id":"p","token":"t","session_custom_claims":{"<a>":"&\u2028"}}`,
		`{"profile_id":"p","token":"t","session_token":null}`,
		`{"profile_id":"\u00e9\ud83d\ude00","token":"\ud800"}`,
		`{"profile_id":"p","token":"t","extra":1}`,
		`{"profile_id":"p","token":"t"} {}`,
		`{"profile_id":"p","token":7}`,
		`{"PROFILE_ID":"p","Token":"t"}`,
		`{"profile_id":"p","token":"a","token":"b"}`,
		`[]`, `null`, `"x"`, ``, `{`, `{}`, "\ufeff{}",
		// Nesting: at the limit, one over, the regression (30,000 unclosed
		// arrays), and brackets the pre-pass must not count.
		`{"profile_id":"p","token":"t","session_custom_claims":{"a":` + nest("[", "0", "]", domain.MaxJSONDepth-2) + `}}`,
		`{"profile_id":"p","token":"t","session_custom_claims":{"a":` + nest("[", "0", "]", domain.MaxJSONDepth-1) + `}}`,
		`{"profile_id":"p","token":"t","session_custom_claims":` + nest(`{"a":`, "0", "}", domain.MaxJSONDepth) + `}`,
		`{"request_id":"r","profile_id":"p","token":"t","session_custom_claims":` + strings.Repeat("[", 30000),
		`{"profile_id":"p","token":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","session_custom_claims":{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[":"\\"}}`,
		`{"profile_id":"p","token":"t","x":` + nest("[", "", "]", 40) + `}`,
		`{"profile_id":"p","token":"t"}` + strings.Repeat("[", 40),
	}
}

// nestingOf is how deep encoding/json's tokenizer nests objects and arrays
// in data before it stops (at the end or at an error).
func nestingOf(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// FuzzDecodeAttestRequest runs an attest payload through DecodeStrict and
// Validate, as the worker does. Neither may panic; every refusal is a
// *domain.Error with a 4xx status; a refusal for nesting is right (the
// payload nests deeper than MaxJSONDepth, or is not JSON); an accepted
// payload nests at most MaxJSONDepth levels, and written back out (secrets
// revealed) decodes and validates to the same request.
func FuzzDecodeAttestRequest(f *testing.F) {
	for _, s := range attestSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req domain.AttestRequest
		claims, err := decodeAndValidate(data, &req)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("refusal %T %v is not a *domain.Error", err, err)
			}
			if de.Status < 400 || de.Status > 499 {
				t.Fatalf("refusal %s has status %d, want 4xx", de.Code, de.Status)
			}
			if de.Code == "" || de.Message == "" {
				t.Fatalf("refusal without code or message: %+v", de)
			}
			if strings.Contains(de.Message, "deeper than") && json.Valid(data) && nestingOf(data) <= domain.MaxJSONDepth {
				t.Fatalf("refused for nesting a valid payload that nests %d levels: %s", nestingOf(data), de.Message)
			}
			return
		}
		if n := nestingOf(data); n > domain.MaxJSONDepth {
			t.Fatalf("accepted a payload nesting %d levels", n)
		}
		if req.ProfileID == "" || req.Token.Empty() {
			t.Fatalf("accepted a request without profile_id or token: %s", data)
		}

		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false) // keep the re-encoding no longer than the input needs
		if err := enc.Encode(attestWire{
			RequestID: req.RequestID, ProfileID: req.ProfileID, Token: req.Token.Reveal(),
			SessionDurationMinutes: req.SessionDurationMinutes, SessionCustomClaims: req.SessionCustomClaims,
			SessionToken: req.SessionToken.Reveal(), SessionJWT: req.SessionJWT.Reveal(),
		}); err != nil {
			t.Fatalf("re-encode an accepted request: %v", err)
		}
		if out.Len() > domain.MaxPayloadBytes {
			// Invalid UTF-8 re-encodes as U+FFFD (3 bytes for 1), which may
			// push a payload near the limit over it.
			return
		}
		var again domain.AttestRequest
		claimsAgain, err := decodeAndValidate(out.Bytes(), &again)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v (input %q)", out.Bytes(), err, data)
		}
		if again.RequestID != req.RequestID || again.ProfileID != req.ProfileID ||
			again.Token.Reveal() != req.Token.Reveal() || again.SessionToken.Reveal() != req.SessionToken.Reveal() ||
			again.SessionJWT.Reveal() != req.SessionJWT.Reveal() ||
			!reflect.DeepEqual(again.SessionDurationMinutes, req.SessionDurationMinutes) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", revealed(req), revealed(again))
		}
		if !reflect.DeepEqual(claimsAgain, claims) {
			t.Fatalf("round trip changed the custom claims: %#v, then %#v", claims, claimsAgain)
		}
	})
}

func decodeAndValidate(data []byte, req *domain.AttestRequest) (map[string]any, error) {
	if err := domain.DecodeStrict(data, req); err != nil {
		return nil, err
	}
	return req.Validate()
}

func revealed(r domain.AttestRequest) string {
	return strings.Join([]string{r.RequestID, r.ProfileID, r.Token.Reveal(), r.SessionToken.Reveal(), r.SessionJWT.Reveal(), string(r.SessionCustomClaims)}, " | ")
}
