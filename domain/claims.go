package domain

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxCustomClaimsBytes bounds session_custom_claims as JSON.
const MaxCustomClaimsBytes = 4 << 10

// SessionClaim is the session JWT claim that holds the session object.
const SessionClaim = "tat_session"

var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	SessionClaim: true,
}

// claimFold folds full Unicode case (U+017F LONG S to s, U+212A KELVIN
// SIGN to k, "SUB" to sub). One value serves every goroutine.
var claimFold = cases.Fold()

// ReservedClaimName reports whether a custom claim name would be read as a
// reserved one (iss sub aud exp nbf iat jti tat_session) by some decoder:
// byte for byte, or after what lenient decoders and people do to names.
// The name is folded and normalized to its skeleton: NFKC (fullwidth and
// compatibility forms), full Unicode case folding (encoding/json's
// case-insensitive matching uses simple folding, which this includes), then
// every combining mark and invisible format character removed. Any name
// whose skeleton is a reserved name is reserved: "ISS", "ſub", "ｅｘｐ",
// "tat_ſession" and "śub" are all refused. Session JWTs put custom
// claims at the top level (as Stytch's do), so this is what keeps a custom
// claim from posing as iss, sub or the session claim.
func ReservedClaimName(name string) bool {
	if reservedClaims[name] {
		return true
	}
	return reservedClaims[claimSkeleton(name)]
}

// claimSkeleton is ReservedClaimName's normal form of a name. The work is
// linear in the name's length.
func claimSkeleton(name string) string {
	s := claimFold.String(norm.NFKC.String(name))
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
			return -1
		case r == 'ı': // U+0131 DOTLESS I: upper-cases to I in Turkish rules
			return 'i'
		}
		return r
	}, norm.NFKD.String(s))
	return norm.NFC.String(s)
}

// ParseCustomClaims validates session_custom_claims as sent: a JSON object
// of at most 4 KiB using no reserved name. A JSON null or absent value gives
// nil. Values that are null are kept (as nil) so MergeClaims can delete.
func ParseCustomClaims(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	if err := checkNesting(raw, "session_custom_claims"); err != nil {
		return nil, err
	}
	if len(raw) > MaxCustomClaimsBytes {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil || buf.Len() > MaxCustomClaimsBytes {
			return nil, ErrCustomClaimsTooLarge.With("session_custom_claims is over %d bytes", MaxCustomClaimsBytes)
		}
	}
	// Read the way every other outside object is: a member sent twice is
	// refused (encoding/json would keep the last), at any depth.
	m, err := DecodeStrictObject(raw)
	if err != nil {
		return nil, ErrInvalidRequest.Wrap(err, "session_custom_claims must be one JSON object: %s", jsonProblem(err))
	}
	for k := range m {
		if ReservedClaimName(k) {
			return nil, ErrReservedClaims.With("session_custom_claims may not set %s: it is or looks like a reserved claim (iss sub aud exp nbf iat jti %s)", quoteShort(k), SessionClaim)
		}
	}
	return m, nil
}

// MergeClaims returns base with update applied: a nil value deletes the key.
// The result is never nil.
func MergeClaims(base, update map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range update {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// CheckClaimsSize refuses a merged claim set over the limit.
func CheckClaimsSize(m map[string]any) error {
	_, err := EncodeClaims(m)
	return err
}

// EncodeClaims encodes a merged claim set as json.Marshal does, refusing
// one over the limit (CheckClaimsSize), so that a caller that checks the
// size and keeps the encoding encodes the claims once.
func EncodeClaims(m map[string]any) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, ErrInvalidRequest.Wrap(err, "session_custom_claims cannot be encoded")
	}
	if len(b) > MaxCustomClaimsBytes {
		return nil, ErrCustomClaimsTooLarge.With("the session's custom claims would be over %d bytes", MaxCustomClaimsBytes)
	}
	return b, nil
}
