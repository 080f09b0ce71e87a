package domain

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// SessionJWTLifetime is how long a session JWT lives (contract section 5).
const SessionJWTLifetime = 5 * time.Minute

// SessionTokenPrefix starts every session token.
const SessionTokenPrefix = "tat_st_"

// SigningKey is one of the worker's own ES256 keys for session JWTs.
type SigningKey struct {
	KID     string
	Private *ecdsa.PrivateKey
}

// Issuer derives session tokens and signs and checks session JWTs. Session
// tokens are HMAC-SHA256(TokenKey, session id): 256 bits no one can guess
// without the key, derivable again by any worker that holds it, so the store
// keeps no session token at all and a repeated request gets the same token.
type Issuer struct {
	TokenKey []byte       // 32 bytes shared by the fleet
	Keys     []SigningKey // Keys[0] signs; all verify
	Iss, Aud string
}

// SessionToken returns the session token of sessionID.
func (is *Issuer) SessionToken(sessionID string) Secret {
	m := hmac.New(sha256.New, is.TokenKey)
	m.Write([]byte("session-token\x00" + sessionID))
	return NewSecret(SessionTokenPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil)))
}

// TokenHash returns the index form of a session token: its SHA-256 in hex.
// The in-memory session index holds hashes, never tokens.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("%x", sum)
}

// MintJWT signs a session JWT for s at now: iss, aud, sub, iat, nbf, exp
// (5 minutes), the session under tat_session, custom claims at the top.
func (is *Issuer) MintJWT(s Session, now time.Time) (Secret, error) {
	if len(is.Keys) == 0 {
		return Secret{}, errors.New("issuer has no signing key")
	}
	k := is.Keys[0]
	now = now.UTC().Truncate(time.Second)
	claims := make(map[string]any, len(s.CustomClaims)+7)
	for name, v := range s.CustomClaims {
		claims[name] = v
	}
	claims["iss"], claims["aud"], claims["sub"] = is.Iss, is.Aud, s.UserID
	claims["iat"], claims["nbf"] = now.Unix(), now.Unix()
	claims["exp"] = now.Add(SessionJWTLifetime).Unix()
	claims[SessionClaim] = s
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": k.KID})
	body, err := json.Marshal(claims)
	if err != nil {
		return Secret{}, fmt.Errorf("encode session jwt: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(input))
	r, sg, err := ecdsa.Sign(rand.Reader, k.Private, digest[:])
	if err != nil {
		return Secret{}, fmt.Errorf("sign session jwt: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sg.FillBytes(sig[32:])
	return NewSecret(input + "." + base64.RawURLEncoding.EncodeToString(sig)), nil
}

// SessionJWTClaims are the parts of a session JWT the worker reads back.
type SessionJWTClaims struct {
	SessionID string
	UserID    string
	ExpiresAt time.Time
}

// ParseJWT checks a session JWT's signature against the worker's keys, its
// iss and aud, and returns the session it names. Its 5-minute exp is not
// enforced here: the session named is checked live, as authenticate does.
func (is *Issuer) ParseJWT(raw string) (SessionJWTClaims, error) {
	bad := ErrSessionNotFound.With("session_jwt is not valid")
	if len(raw) > 64<<10 {
		return SessionJWTClaims{}, bad
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return SessionJWTClaims{}, bad
	}
	hb, err1 := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || len(sig) != 64 {
		return SessionJWTClaims{}, bad
	}
	var hdr struct{ Alg, Kid string }
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "ES256" {
		return SessionJWTClaims{}, bad
	}
	var key *ecdsa.PublicKey
	for _, k := range is.Keys {
		if k.KID == hdr.Kid {
			key = &k.Private.PublicKey
		}
	}
	if key == nil {
		return SessionJWTClaims{}, bad
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key, digest[:], r, s) {
		return SessionJWTClaims{}, bad
	}
	var c struct {
		Iss     string  `json:"iss"`
		Aud     string  `json:"aud"`
		Sub     string  `json:"sub"`
		Exp     int64   `json:"exp"`
		Session Session `json:"tat_session"`
	}
	if json.Unmarshal(pb, &c) != nil || c.Iss != is.Iss || c.Aud != is.Aud || c.Session.SessionID == "" {
		return SessionJWTClaims{}, bad
	}
	return SessionJWTClaims{SessionID: c.Session.SessionID, UserID: c.Sub, ExpiresAt: time.Unix(c.Exp, 0).UTC()}, nil
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

// PublicJWKS returns the public keys that verify session JWTs.
func (is *Issuer) PublicJWKS() JWKSet {
	set := JWKSet{Keys: []JWK{}}
	for _, k := range is.Keys {
		pub := &k.Private.PublicKey
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil || len(raw) != 65 {
			continue
		}
		x, y := raw[1:33], raw[33:]
		set.Keys = append(set.Keys, JWK{Kty: "EC", Crv: "P-256",
			X: base64.RawURLEncoding.EncodeToString(x), Y: base64.RawURLEncoding.EncodeToString(y),
			Kid: k.KID, Alg: "ES256", Use: "sig"})
	}
	return set
}
