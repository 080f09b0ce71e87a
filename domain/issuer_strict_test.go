package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// signRaw signs header and payload given as JSON text, so a test can send
// what no encoder writes: repeated members, case variants.
func signRaw(t *testing.T, k domain.SigningKey, header, payload string) string {
	t.Helper()
	return rawToken(t, header, payload, func(in []byte) []byte { return sign(t, "ES256", k.Private, in) })
}

// TestSessionTakeoverThroughLookAlikeClaim is the regression test of the
// session takeover: a custom claim "tat_ſession" (U+017F) naming another
// session, or "ſub" naming another user, must never make a session JWT
// name the victim's session or user, even when the claim is already in a
// stored session (written before the rule existed).
func TestSessionTakeoverThroughLookAlikeClaim(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	victim := map[string]any{"session_id": "session-victim", "user_id": "user-victim"}
	for _, name := range []string{"tat_\u017fession", "TAT_SESSION", "\u017fub", "SUB", "ｓｕｂ"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := testSession()
			s.CustomClaims = map[string]any{name: victim, "plan": "pro"}
			jwt, err := is.MintJWT(s, testNow)
			if err != nil {
				t.Fatal(err)
			}
			got, err := is.ParseJWT(jwt.Reveal(), testNow)
			if err != nil {
				t.Fatalf("ParseJWT: %v", err)
			}
			if got.SessionID != "session-1" || got.UserID != "user-1" {
				t.Fatalf("ParseJWT = %+v, want session-1 of user-1", got)
			}
			payload := mustB64(t, strings.Split(jwt.Reveal(), ".")[1])
			var top map[string]json.RawMessage
			if err := json.Unmarshal(payload, &top); err != nil {
				t.Fatal(err)
			}
			if _, found := top[name]; found {
				t.Errorf("the minted JWT carries the look-alike claim at the top: %s", payload)
			}
			if _, found := top["plan"]; !found {
				t.Errorf("the minted JWT lost the ordinary custom claim: %s", payload)
			}
			// What a relying party with a standard struct decoder reads.
			var rp struct {
				Sub     string `json:"sub"`
				Session struct {
					SessionID string `json:"session_id"`
				} `json:"tat_session"`
			}
			if err := json.Unmarshal(payload, &rp); err != nil {
				t.Fatal(err)
			}
			if rp.Sub != "user-1" || rp.Session.SessionID != "session-1" {
				t.Errorf("encoding/json reads sub %q, session %q", rp.Sub, rp.Session.SessionID)
			}
		})
	}
}

// TestParseJWTStrictMembers: a JWT that verifies with the worker's own key
// is still refused when its JSON is not strict, or names its session in any
// way but the exact members. (Signed with the real key: only the strict
// rules can refuse these.)
func TestParseJWTStrictMembers(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	k := is.Keys[0]
	hdr := `{"alg":"ES256","kid":"k1","typ":"JWT"}`
	head := `"iss":"` + sessionIss + `","aud":"` + sessionAud + `","sub":"user-1","iat":1,"nbf":1,"exp":2000000000`
	mine := `{"session_id":"session-1","user_id":"user-1"}`
	victim := `{"session_id":"session-victim","user_id":"user-1"}`

	ok := signRaw(t, k, hdr, `{`+head+`,"tat_session":`+mine+`}`)
	if got, err := is.ParseJWT(ok, testNow); err != nil || got.SessionID != "session-1" || got.UserID != "user-1" {
		t.Fatalf("control: ParseJWT = %+v, %v", got, err)
	}
	for _, tc := range []struct{ name, header, payload string }{
		{"tat_session twice (last would win)", hdr, `{` + head + `,"tat_session":` + mine + `,"tat_session":` + victim + `}`},
		{"case variant after the real claim", hdr, `{` + head + `,"tat_session":` + mine + `,"TAT_SESSION":` + victim + `}`},
		{"long s variant after the real claim", hdr, `{` + head + `,"tat_session":` + mine + `,"tat_\u017fession":` + victim + `}`},
		{"case variant only", hdr, `{` + head + `,"Tat_Session":` + victim + `}`},
		{"session_id twice inside", hdr, `{` + head + `,"tat_session":{"session_id":"session-1","session_id":"session-victim","user_id":"user-1"}}`},
		{"session_id in another case inside", hdr, `{` + head + `,"tat_session":{"SESSION_ID":"session-victim","user_id":"user-1"}}`},
		{"sub twice", hdr, `{` + head + `,"sub":"user-2","tat_session":` + mine + `}`},
		{"sub and the session's user differ", hdr, `{` + strings.Replace(head, "user-1", "user-2", 1) + `,"tat_session":` + mine + `}`},
		{"session_id not a string", hdr, `{` + head + `,"tat_session":{"session_id":1,"user_id":"user-1"}}`},
		{"tat_session not an object", hdr, `{` + head + `,"tat_session":"session-1"}`},
		{"exp not a number", hdr, `{` + strings.Replace(head, `"exp":2000000000`, `"exp":"2000000000"`, 1) + `,"tat_session":` + mine + `}`},
		{"kid twice", `{"alg":"ES256","kid":"k1","kid":"k1","typ":"JWT"}`, `{` + head + `,"tat_session":` + mine + `}`},
		{"ALG in another case", `{"ALG":"ES256","kid":"k1"}`, `{` + head + `,"tat_session":` + mine + `}`},
		{"trailing data after the payload", hdr, `{` + head + `,"tat_session":` + mine + `}{}`},
		{"invalid UTF-8 in the payload", hdr, `{` + head + `,"x":"` + "\xff" + `","tat_session":` + mine + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := is.ParseJWT(signRaw(t, k, tc.header, tc.payload), testNow)
			if !errors.Is(err, domain.ErrSessionNotFound) {
				t.Fatalf("ParseJWT = %+v, %v; want session_not_found", got, err)
			}
		})
	}
}
