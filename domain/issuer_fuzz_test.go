package domain_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// FuzzParseSessionJWT feeds the session JWT parser arbitrary text next to
// real minted JWTs. It must never panic, and whatever it accepts must be a
// JWT whose signature verifies with the worker's key (checked here with the
// standard library alone) and whose one tat_session names the session and
// the user it returns.
func FuzzParseSessionJWT(f *testing.F) {
	is := newIssuer(f)
	s := testSession()
	s.CustomClaims = map[string]any{"plan": "pro", "tat_\u017fession": map[string]any{"session_id": "session-victim"}}
	jwt, err := is.MintJWT(s, testNow)
	if err != nil {
		f.Fatal(err)
	}
	good := jwt.Reveal()
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + b64([]byte(`{"tat_session":{"session_id":"a"},"tat_session":{"session_id":"b"}}`)) + "." + parts[2])
	f.Add(b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(good + "." + parts[2])
	f.Add(strings.Repeat("[", 1000))
	pub := &is.Keys[0].Private.PublicKey
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := is.ParseJWT(raw, testNow)
		if err != nil {
			if got != (domain.SessionJWTClaims{}) {
				t.Fatalf("claims %+v returned with error %v", got, err)
			}
			return
		}
		p := strings.Split(raw, ".")
		if len(p) != 3 {
			t.Fatalf("accepted a JWT of %d parts", len(p))
		}
		sig := mustB64(t, p[2])
		d := sha256.Sum256([]byte(p[0] + "." + p[1]))
		if len(sig) != 64 || !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("accepted a JWT whose signature does not verify")
		}
		var c struct {
			Sub     string `json:"sub"`
			Session struct {
				SessionID string `json:"session_id"`
			} `json:"tat_session"`
		}
		if err := json.Unmarshal(mustB64(t, p[1]), &c); err != nil {
			t.Fatalf("accepted a payload encoding/json refuses: %v", err)
		}
		if c.Session.SessionID != got.SessionID || c.Sub != got.UserID {
			t.Fatalf("ParseJWT = %+v, encoding/json reads session %q sub %q", got, c.Session.SessionID, c.Sub)
		}
	})
}
