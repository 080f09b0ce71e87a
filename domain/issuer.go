package domain

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SessionJWTLifetime is how long a session JWT lives (contract section 5).
const SessionJWTLifetime = 5 * time.Minute

// SessionTokenPrefix starts every session token.
const SessionTokenPrefix = "tat_st_"

// SigningKey is one of the worker's own ES256 keys for session JWTs, with
// the times that fix its state (see KeyTimes; all zero: it signs and
// verifies at every instant).
type SigningKey struct {
	KID     string
	Private *ecdsa.PrivateKey
	Number  int // its place in the fleet's rotation (see KeyRecord)
	KeyTimes
}

// KeyRing gives the fleet's current session-signing keys: the worker's
// ring changes as rotations are recorded, and the state of each key
// changes with the clock.
type KeyRing interface {
	// SessionKeys returns the keys known, in rotation order; the caller
	// must not change the slice.
	SessionKeys() []SigningKey
}

// Issuer derives session tokens and signs and checks session JWTs. Session
// tokens are HMAC-SHA256(TokenKey, session id): 256 bits no one can guess
// without the key, derivable again by any worker that holds it, so the store
// keeps no session token at all and a repeated request gets the same token.
// The token key never rotates; the signing keys do (KeyRing).
type Issuer struct {
	TokenKey []byte // 32 bytes shared by the fleet
	// Keys are fixed keys, used when Ring is nil. At an instant, the first
	// key whose state is signing signs; every key that is not retired
	// verifies and is published.
	Keys     []SigningKey
	Ring     KeyRing // when set, the keys come from it
	Iss, Aud string
}

// keys returns the keys in use.
func (is *Issuer) keys() []SigningKey {
	if is.Ring != nil {
		return is.Ring.SessionKeys()
	}
	return is.Keys
}

// Signer returns the key that signs at now: the first whose state at now
// is signing.
func (is *Issuer) Signer(now time.Time) (SigningKey, bool) {
	for _, k := range is.keys() {
		if k.Private != nil && k.StateAt(now) == KeySigning {
			return k, true
		}
	}
	return SigningKey{}, false
}

// published returns the keys that verify (and are published) at now:
// every key not retired.
func (is *Issuer) published(now time.Time) []SigningKey {
	all := is.keys()
	out := make([]SigningKey, 0, len(all))
	for _, k := range all {
		if k.Private != nil && k.StateAt(now) != KeyRetired {
			out = append(out, k)
		}
	}
	return out
}

// SessionToken returns the session token of sessionID.
func (is *Issuer) SessionToken(sessionID string) Secret {
	m := hmac.New(sha256.New, is.TokenKey)
	m.Write([]byte("session-token\x00" + sessionID))
	return NewSecret(SessionTokenPrefix + b64url(m.Sum(nil)))
}

// TokenHash returns the index form of a session token: its SHA-256 in hex.
// The in-memory session index holds hashes, never tokens.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("%x", sum)
}

// MintJWT signs a session JWT for s at now with the key that signs at now
// (see Signer; ES256, its kid and typ JWT in the protected header, signed
// by jwx through SignJWT):
// iss, aud, sub, iat, nbf, exp (5 minutes), the session under tat_session,
// custom claims at the top.
func (is *Issuer) MintJWT(s Session, now time.Time) (Secret, error) {
	k, ok := is.Signer(now)
	if !ok {
		return Secret{}, errors.New("issuer has no signing key")
	}
	now = now.UTC().Truncate(time.Second)
	claims := make(map[string]any, len(s.CustomClaims)+7)
	for name, v := range s.CustomClaims {
		// Refused on the way in; skipped here too, so a session stored
		// before the rule (or by a buggy writer) cannot pose as another.
		if !ReservedClaimName(name) {
			claims[name] = v
		}
	}
	claims["iss"], claims["aud"], claims["sub"] = is.Iss, is.Aud, s.UserID
	claims["iat"], claims["nbf"] = now.Unix(), now.Unix()
	claims["exp"] = now.Add(SessionJWTLifetime).Unix()
	claims[SessionClaim] = s
	tok, err := SignJWT(k.Private, "ES256", k.KID, claims)
	if err != nil {
		return Secret{}, fmt.Errorf("sign session jwt: %w", err)
	}
	return NewSecret(tok), nil
}

// SessionJWTClaims are the parts of a session JWT the worker reads back.
type SessionJWTClaims struct {
	SessionID string
	UserID    string
	ExpiresAt time.Time
}

// maxSessionJWTBytes bounds a session JWT before it is parsed: the claims
// are bounded (4 KiB of custom claims, a session with few factors).
const maxSessionJWTBytes = 64 << 10

// ParseJWT checks a session JWT and returns the session it names. It
// parses with the trusted-token pre-check (PrecheckToken: compact only,
// strict base64url, strict JSON with exact member names and no duplicate
// members), then requires ES256 and a kid naming one of the worker's keys,
// verifies the signature (jwx's ES256 verifier, as for trusted tokens), and reads iss, aud, sub and tat_session by their
// exact names: iss and aud must be the worker's, and tat_session's
// session_id and user_id must be strings, its user_id equal to sub. A
// claim that only looks like a reserved one (see ReservedClaimName) is
// refused. Its
// 5-minute exp is not enforced here: the session named is checked live, as
// authenticate does. Every refusal is the same session_not_found.
func (is *Issuer) ParseJWT(raw string, now time.Time) (SessionJWTClaims, error) {
	bad := ErrSessionNotFound.With("session_jwt is not valid")
	pt, err := PrecheckToken(raw, maxSessionJWTBytes)
	if err != nil || pt.alg != "ES256" || pt.kid == "" {
		return SessionJWTClaims{}, bad
	}
	var key *ecdsa.PublicKey
	for _, k := range is.keys() {
		if k.KID == pt.kid && k.Private != nil && k.StateAt(now) != KeyRetired {
			key = &k.Private.PublicKey
			break
		}
	}
	if key == nil || !verifySignature(pt.alg, key, pt.signingInput, pt.signature) {
		return SessionJWTClaims{}, bad
	}
	for name := range pt.claims {
		if !reservedClaims[name] && ReservedClaimName(name) {
			// A look-alike of a reserved claim ("tat_ſession", "SUB"):
			// never minted by this worker since the rule, and read as the
			// real one by lenient decoders.
			return SessionJWTClaims{}, bad
		}
	}
	iss, _ := pt.claims["iss"].(string)
	aud, _ := pt.claims["aud"].(string)
	sub, _ := pt.claims["sub"].(string)
	exp, _ := pt.claims["exp"].(json.Number)
	expires, expErr := exp.Int64()
	sess, _ := pt.claims[SessionClaim].(map[string]any)
	sid, _ := sess["session_id"].(string)
	uid, _ := sess["user_id"].(string)
	if iss != is.Iss || aud != is.Aud || sid == "" || sub == "" || uid != sub || expErr != nil {
		return SessionJWTClaims{}, bad
	}
	return SessionJWTClaims{SessionID: sid, UserID: sub, ExpiresAt: time.Unix(expires, 0).UTC()}, nil
}

// JWK is a public JSON Web Key as the worker publishes it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKSet is {"keys": [...]}.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// PublicJWKS returns the public keys that verify session JWTs at now:
// every key not retired, the next key included.
func (is *Issuer) PublicJWKS(now time.Time) JWKSet {
	set := JWKSet{Keys: []JWK{}}
	for _, k := range is.published(now) {
		pub := &k.Private.PublicKey
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil || len(raw) != 65 {
			continue
		}
		x, y := raw[1:33], raw[33:]
		set.Keys = append(set.Keys, JWK{Kty: "EC", Crv: "P-256",
			X: b64url(x), Y: b64url(y),
			Kid: k.KID, Alg: "ES256", Use: "sig"})
	}
	return set
}
