package domain

import (
	"bytes"
	"encoding/json"
	"maps"
)

// MaxCustomClaimsBytes bounds session_custom_claims as JSON.
const MaxCustomClaimsBytes = 4 << 10

// SessionClaim is the session JWT claim that holds the session object.
const SessionClaim = "tat_session"

var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	SessionClaim: true,
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
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, ErrInvalidRequest.With("session_custom_claims must be a JSON object")
	}
	for k := range m {
		if reservedClaims[k] {
			return nil, ErrReservedClaims.With("session_custom_claims may not set %q", k)
		}
	}
	return m, nil
}

// MergeClaims returns base with update applied: a nil value deletes the key.
// The result is never nil.
func MergeClaims(base, update map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(update))
	maps.Copy(out, base)
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
	b, err := json.Marshal(m)
	if err != nil {
		return ErrInvalidRequest.Wrap(err, "session_custom_claims cannot be encoded")
	}
	if len(b) > MaxCustomClaimsBytes {
		return ErrCustomClaimsTooLarge.With("the session's custom claims would be over %d bytes", MaxCustomClaimsBytes)
	}
	return nil
}
