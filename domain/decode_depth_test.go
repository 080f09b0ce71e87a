package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// TestDecodeStrictNesting: a payload may nest objects and arrays
// MaxJSONDepth levels deep, its own object included; one level more is
// invalid_request, whatever the nesting is made of and wherever it is,
// and brackets inside strings count for nothing.
func TestDecodeStrictNesting(t *testing.T) {
	t.Parallel()
	const tooDeep = "nests objects and arrays deeper than 32 levels"
	// claims nests open and close (each making one level, or two with
	// mixed) into session_custom_claims until levels (counted from the
	// payload's own object) are reached.
	claims := func(open, close string, levels int) string {
		inner := levels - 2 // the payload object and the claims object
		if strings.Count(open, "[")+strings.Count(open, "{") == 2 {
			inner /= 2
		}
		return `{"profile_id":"p","token":"t","session_custom_claims":{"a":` + nest(open, "0", close, inner) + `}}`
	}
	for _, tc := range []struct {
		name    string
		payload string
		wantMsg string // "" when accepted
	}{
		{name: "arrays at the limit", payload: claims("[", "]", domain.MaxJSONDepth)},
		{name: "arrays one over", payload: claims("[", "]", domain.MaxJSONDepth+1), wantMsg: tooDeep},
		{name: "objects at the limit", payload: claims(`{"a":`, "}", domain.MaxJSONDepth)},
		{name: "objects one over", payload: claims(`{"a":`, "}", domain.MaxJSONDepth+1), wantMsg: tooDeep},
		{name: "mixed at the limit", payload: claims(`[{"a":`, "}]", domain.MaxJSONDepth)},
		{name: "mixed one over", payload: claims(`[{"a":`, "}]", domain.MaxJSONDepth+2), wantMsg: tooDeep},
		{name: "deep inside an unknown member", payload: `{"profile_id":"p","token":"t","x":` + nest("[", "", "]", 40) + `}`, wantMsg: tooDeep},
		{name: "deep inside a typed member", payload: `{"profile_id":"p","token":` + nest("[", `"t"`, "]", 40) + `}`, wantMsg: tooDeep},
		{name: "deep after the object", payload: `{"profile_id":"p","token":"t"}` + nest("[", "", "]", 40), wantMsg: tooDeep},
		{name: "the regression: 30000 unclosed arrays", payload: `{"request_id":"r","profile_id":"p","token":"t","session_custom_claims":` + strings.Repeat("[", 30000), wantMsg: tooDeep},
		{name: "brackets in a string", payload: `{"profile_id":"p","token":"` + strings.Repeat("[{", 1000) + `"}`},
		{name: "brackets after an escaped quote", payload: `{"profile_id":"p","token":"\"` + strings.Repeat("[", 100) + `"}`},
		{name: "brackets after an escaped backslash", payload: `{"profile_id":"p","token":"\\","session_custom_claims":` + nest("[", "", "]", 40) + `}`, wantMsg: tooDeep},
		{name: "brackets in a member name", payload: `{"profile_id":"p","token":"t","session_custom_claims":{"` + strings.Repeat("[", 100) + `":1}}`},
		{name: "brackets after a unicode escape", payload: `{"profile_id":"p","token":"\u005c` + strings.Repeat("[", 100) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var req domain.AttestRequest
			err := domain.DecodeStrict([]byte(tc.payload), &req)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("DecodeStrict: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalidRequest) {
				t.Fatalf("DecodeStrict = %v, want invalid_request", err)
			}
			if msg := domain.AsError(err).Message; msg != "payload is not valid: it "+tc.wantMsg {
				t.Errorf("Message = %q", msg)
			}
		})
	}
}

// TestParseCustomClaimsNesting: custom claims parsed on their own (not only
// as part of a payload) are bounded the same way, their own object being
// level 1.
func TestParseCustomClaimsNesting(t *testing.T) {
	t.Parallel()
	atLimit := `{"a":` + nest("[", "0", "]", domain.MaxJSONDepth-1) + `}`
	got, err := domain.ParseCustomClaims(json.RawMessage(atLimit))
	if err != nil || got["a"] == nil {
		t.Fatalf("ParseCustomClaims at the limit = %v, %v", got, err)
	}
	// Objects at the limit too: the reader's own depth check agrees with
	// the pre-pass.
	objectsAtLimit := nest(`{"a":`, "0", "}", domain.MaxJSONDepth)
	if got, err := domain.ParseCustomClaims(json.RawMessage(objectsAtLimit)); err != nil || got["a"] == nil {
		t.Fatalf("ParseCustomClaims of objects at the limit = %v, %v", got, err)
	}
	for name, raw := range map[string]string{
		"one over":           `{"a":` + nest("[", "0", "]", domain.MaxJSONDepth) + `}`,
		"unclosed":           `{"a":` + strings.Repeat("[", 30000),
		"padded over 4 KiB":  `{"a":` + nest("[", "0", "]", 40) + strings.Repeat(" ", domain.MaxCustomClaimsBytes) + `}`,
		"deep objects":       nest(`{"a":`, "0", "}", 100),
		"not even an object": nest("[", "", "]", 33),
	} {
		_, err := domain.ParseCustomClaims(json.RawMessage(raw))
		if !errors.Is(err, domain.ErrInvalidRequest) {
			t.Errorf("%s: ParseCustomClaims = %v, want invalid_request", name, err)
			continue
		}
		if want := "session_custom_claims is not valid: it nests objects and arrays deeper than 32 levels"; domain.AsError(err).Message != want {
			t.Errorf("%s: Message = %q, want %q", name, domain.AsError(err).Message, want)
		}
	}
}

// TestDecodeStrictNamesTheMember: a refusal names where the member is,
// through structs and lists, and quotes at most 64 bytes of a name.
func TestDecodeStrictNamesTheMember(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, payload string
		into          any
		wantMsg       string
	}{
		{name: "top level", payload: `{"profile_id":"p","Token":"t"}`, into: &domain.AttestRequest{},
			wantMsg: `payload is not valid: unknown field "Token"`},
		{name: "in a struct", payload: `{"op":"upsert","profile":{"attribute_mapping":{"Email":"e"}}}`, into: &domain.ProfileCommand{},
			wantMsg: `payload is not valid: unknown field "profile.attribute_mapping.Email"`},
		{name: "in a list", payload: `{"op":"upsert","user":{"emails":[{"email":"a@b.c"},{"email":"d@e.f","Verified":true}]}}`, into: &domain.UserCommand{},
			wantMsg: `payload is not valid: unknown field "user.emails[1].Verified"`},
		{name: "sent twice in a list", payload: `{"op":"upsert","user":{"emails":[{"email":"a@b.c","email":"d@e.f"}]}}`, into: &domain.UserCommand{},
			wantMsg: `payload is not valid: field "user.emails[0].email" is sent twice`},
		{name: "a long name", payload: `{"profile_id":"p","` + strings.Repeat("k", 10000) + `":1}`, into: &domain.AttestRequest{},
			wantMsg: `payload is not valid: unknown field "` + strings.Repeat("k", 64) + `..."`},
		{name: "a name of exactly 64 bytes is quoted whole", payload: `{"profile_id":"p","` + strings.Repeat("k", 64) + `":1}`, into: &domain.AttestRequest{},
			wantMsg: `payload is not valid: unknown field "` + strings.Repeat("k", 64) + `"`},
		{name: "a number for a list of structs", payload: `{"op":"upsert","user":{"emails":7}}`, into: &domain.UserCommand{},
			wantMsg: `payload is not valid: field "user.emails" must be an array`},
		{name: "a string for a struct in a list", payload: `{"op":"upsert","user":{"emails":["a@b.c"]}}`, into: &domain.UserCommand{},
			wantMsg: `payload is not valid: field "user.emails[0]" must be an object`},
		{name: "an array for a struct", payload: `{"op":"upsert","profile":[]}`, into: &domain.ProfileCommand{},
			wantMsg: `payload is not valid: field "profile" must be an object`},
		{name: "an object for a list", payload: `{"op":"upsert","user":{"emails":{"email":"a@b.c"}}}`, into: &domain.UserCommand{},
			wantMsg: `payload is not valid: field "user.emails" must be an array`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := domain.DecodeStrict([]byte(tc.payload), tc.into)
			if !errors.Is(err, domain.ErrInvalidRequest) {
				t.Fatalf("DecodeStrict = %v, want invalid_request", err)
			}
			if msg := domain.AsError(err).Message; msg != tc.wantMsg {
				t.Errorf("Message = %q\nwant      %q", msg, tc.wantMsg)
			}
		})
	}
	// null leaves a struct or a list as it is, in the walk as in encoding/json.
	var cmd domain.UserCommand
	if err := domain.DecodeStrict([]byte(`{"op":"upsert","user":{"emails":[null,{"email":"a@b.c"}],"name":null}}`), &cmd); err != nil {
		t.Fatalf("nulls: %v", err)
	}
}
