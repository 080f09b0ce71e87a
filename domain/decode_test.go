package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// secretToken stands for a bearer secret sent in a payload: no error built
// from the payload may carry it.
const secretToken = "eyJhbGciOiJFZERTQSJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXNlY3JldA"

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	// pad grows a valid attest request to exactly n bytes with trailing
	// whitespace, which the decoder accepts.
	pad := func(n int) string {
		base := `{"profile_id":"p-1","token":"` + secretToken + `"}`
		return base + strings.Repeat(" ", n-len(base))
	}
	for _, tc := range []struct {
		name    string
		payload string
		wantErr bool
		wantMsg string // substring of Message when refused
	}{
		{name: "valid request", payload: `{"request_id":"r-1","profile_id":"p-1","token":"` + secretToken + `","session_duration_minutes":60,"session_custom_claims":{"plan":"pro"}}`},
		{name: "valid with surrounding whitespace", payload: " \n\t{\"profile_id\":\"p-1\",\"token\":\"t\"}\r\n "},
		{name: "valid with nulls for secrets", payload: `{"profile_id":"p-1","token":"t","session_token":null,"session_jwt":null}`},
		{name: "exactly 64 KiB", payload: pad(domain.MaxPayloadBytes)},
		{name: "one byte over 64 KiB", payload: pad(domain.MaxPayloadBytes + 1), wantErr: true, wantMsg: "64 KiB"},
		{name: "unknown field", payload: `{"profile_id":"p-1","token":"t","tokn":"` + secretToken + `"}`, wantErr: true, wantMsg: `unknown field "tokn"`},
		{name: "unknown nested field is ignored inside custom claims", payload: `{"profile_id":"p-1","token":"t","session_custom_claims":{"anything":1}}`},
		{name: "wrong type: token is a number", payload: `{"profile_id":"p-1","token":123}`, wantErr: true, wantMsg: `field "token" must be string`},
		{name: "wrong type: token is an array of the secret", payload: `{"profile_id":"p-1","token":["` + secretToken + `"]}`, wantErr: true, wantMsg: `field "token" must be string`},
		{name: "wrong type: profile_id is an object", payload: `{"profile_id":{"id":"` + secretToken + `"},"token":"t"}`, wantErr: true, wantMsg: `field "profile_id" must be string`},
		{name: "wrong type: duration is a string", payload: `{"profile_id":"p-1","token":"` + secretToken + `","session_duration_minutes":"60"}`, wantErr: true, wantMsg: `field "session_duration_minutes" must be int`},
		{name: "wrong type: duration is fractional", payload: `{"profile_id":"p-1","token":"t","session_duration_minutes":1.5}`, wantErr: true, wantMsg: `field "session_duration_minutes" must be int`},
		{name: "trailing object", payload: `{"profile_id":"p-1","token":"t"}{"token":"` + secretToken + `"}`, wantErr: true, wantMsg: "trailing data"},
		{name: "trailing garbage", payload: `{"profile_id":"p-1","token":"t"} x`, wantErr: true, wantMsg: "trailing data"},
		{name: "trailing string holding the secret", payload: `{"profile_id":"p-1","token":"t"} "` + secretToken + `"`, wantErr: true, wantMsg: "trailing data"},
		{name: "truncated", payload: `{"profile_id":"p-1","token":"` + secretToken, wantErr: true, wantMsg: "truncated JSON"},
		{name: "control character inside the secret", payload: `{"profile_id":"p-1","token":"` + secretToken[:10] + "\t" + secretToken[10:] + `"}`, wantErr: true, wantMsg: "malformed JSON"},
		{name: "not an object: array", payload: `[]`, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: array of an object", payload: `[{"profile_id":"p-1"}]`, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: null", payload: `null`, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: string", payload: `"x"`, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: the secret as a string", payload: `"` + secretToken + `"`, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: number", payload: `42`, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: empty", payload: ``, wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: whitespace only", payload: " \n\t", wantErr: true, wantMsg: "must be a JSON object"},
		{name: "not an object: byte order mark", payload: "\ufeff{}", wantErr: true, wantMsg: "must be a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var req domain.AttestRequest
			err := domain.DecodeStrict([]byte(tc.payload), &req)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("DecodeStrict: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalidRequest) {
				t.Fatalf("DecodeStrict = %v, want invalid_request", err)
			}
			de := domain.AsError(err)
			if de.Status != 400 {
				t.Errorf("Status = %d, want 400", de.Status)
			}
			if !strings.Contains(de.Message, tc.wantMsg) {
				t.Errorf("Message = %q, want it to mention %q", de.Message, tc.wantMsg)
			}
			for _, leak := range []string{secretToken, secretToken[:16], "c2VjcmV0"} {
				if strings.Contains(de.Message, leak) || strings.Contains(err.Error(), leak) {
					t.Errorf("the error %q carries a value of the payload (%q)", err, leak)
				}
			}
		})
	}
}

func TestDecodeStrictFillsTheRequest(t *testing.T) {
	t.Parallel()
	payload := `{"request_id":"r-1","profile_id":"p-1","token":"tok","session_duration_minutes":60,` +
		`"session_custom_claims":{"plan":"pro"},"session_token":"st","session_jwt":""}`
	var req domain.AttestRequest
	if err := domain.DecodeStrict([]byte(payload), &req); err != nil {
		t.Fatalf("DecodeStrict: %v", err)
	}
	if req.RequestID != "r-1" || req.ProfileID != "p-1" || req.Token.Reveal() != "tok" ||
		req.SessionDurationMinutes == nil || *req.SessionDurationMinutes != 60 ||
		string(req.SessionCustomClaims) != `{"plan":"pro"}` ||
		req.SessionToken.Reveal() != "st" || !req.SessionJWT.Empty() {
		t.Errorf("decoded %+v", req)
	}
}

// TestDecodeStrictMatchesFieldNamesExactly: the wire names are snake_case
// and decoding is strict (contract section 1), so a field spelled in
// another case is an unknown field, and a field sent twice is ambiguous.
// encoding/json matches names case-insensitively and keeps the last
// duplicate, so these are accepted today: see the report.
func TestDecodeStrictMatchesFieldNamesExactly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		payload string
		into    func() any
	}{
		{name: "upper-case field", payload: `{"PROFILE_ID":"p-1","token":"t"}`, into: func() any { return &domain.AttestRequest{} }},
		{name: "capitalised field", payload: `{"profile_id":"p-1","Token":"t"}`, into: func() any { return &domain.AttestRequest{} }},
		{name: "field sent twice, second in another case", payload: `{"profile_id":"p-1","token":"a","Token":"b"}`, into: func() any { return &domain.AttestRequest{} }},
		{name: "field sent twice", payload: `{"profile_id":"p-1","token":"a","token":"b"}`, into: func() any { return &domain.AttestRequest{} }},
		{name: "nested field in another case", payload: `{"op":"upsert","profile":{"Issuer":"https://idp.example.com"}}`, into: func() any { return &domain.ProfileCommand{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := domain.DecodeStrict([]byte(tc.payload), tc.into()); !errors.Is(err, domain.ErrInvalidRequest) {
				t.Errorf("DecodeStrict(%s) = %v, want invalid_request", tc.payload, err)
			}
		})
	}
}
