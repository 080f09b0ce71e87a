package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The client's own wire types mirror the contract (docs/CONTRACT.md); they
// do not depend on the worker's packages. Times are RFC 3339 UTC to the
// second. Decoding is lenient (members added to the contract later are
// ignored); a test keeps them in step with the worker's JSON.

// AttributeMapping names the token claims that hold a user's attributes
// (contract section 4). Email and TokenID are required.
type AttributeMapping struct {
	Email          string `json:"email"`
	TokenID        string `json:"token_id"`
	ExternalUserID string `json:"external_user_id,omitempty"`
	RoleIDs        string `json:"role_ids,omitempty"`
}

// ProfileSpec is a trusted-auth-token profile as a command sends it:
// exactly one of JWKSURL and PublicKeys (PEM public keys).
type ProfileSpec struct {
	ProfileID        string           `json:"profile_id,omitempty"` // generated from the change_id when empty
	Name             string           `json:"name,omitempty"`
	Issuer           string           `json:"issuer"`
	Audience         string           `json:"audience"`
	JWKSURL          string           `json:"jwks_url,omitempty"`
	PublicKeys       []string         `json:"public_keys,omitempty"`
	AttributeMapping AttributeMapping `json:"attribute_mapping"`
	CanJITProvision  bool             `json:"can_jit_provision,omitempty"`
	// MaxTokenLifetimeSeconds, when above 0, refuses tokens that live
	// longer (exp - iat).
	MaxTokenLifetimeSeconds int64 `json:"max_token_lifetime_seconds,omitempty"`
}

// Profile is a stored profile, as replies, reads and events carry it.
type Profile struct {
	ProfileSpec
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UserEmail is one address of a user.
type UserEmail struct {
	Email    string `json:"email"`
	Verified bool   `json:"verified"`
}

// UserName is a user's name; every part is optional.
type UserName struct {
	FirstName  string `json:"first_name,omitempty"`
	MiddleName string `json:"middle_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
}

// User statuses. Only an active user may attest or authenticate a session.
const (
	UserActive   = "active"
	UserPending  = "pending"
	UserDisabled = "disabled"
)

// UserSpec is a user as a command sends it (contract section 5).
type UserSpec struct {
	UserID     string      `json:"user_id,omitempty"` // generated from the change_id when empty
	Emails     []UserEmail `json:"emails,omitempty"`
	Name       UserName    `json:"name"`
	Status     string      `json:"status,omitempty"` // UserActive (default), UserPending, UserDisabled
	ExternalID string      `json:"external_id,omitempty"`
	// TrustedMetadata is any JSON object of at most 16 KiB.
	TrustedMetadata json.RawMessage `json:"trusted_metadata,omitempty"`
}

// User is a stored user, as replies, reads and events carry it.
type User struct {
	UserSpec
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TrustedAuthTokenFactor names the profile and token that attested to a
// session.
type TrustedAuthTokenFactor struct {
	TokenID   string `json:"token_id"`
	ProfileID string `json:"profile_id"`
}

// AuthenticationFactor is one factor of a session: the worker only makes
// trusted_auth_token factors (delivery method trusted_token_exchange).
type AuthenticationFactor struct {
	Type                   string                  `json:"type"`
	DeliveryMethod         string                  `json:"delivery_method"`
	CreatedAt              time.Time               `json:"created_at"`
	UpdatedAt              time.Time               `json:"updated_at"`
	LastAuthenticatedAt    time.Time               `json:"last_authenticated_at"`
	TrustedAuthTokenFactor *TrustedAuthTokenFactor `json:"trusted_auth_token_factor,omitempty"`
}

// Session is a session without its secrets (its session_token and JWTs
// travel beside it, in the results that may carry them).
type Session struct {
	SessionID             string                 `json:"session_id"`
	UserID                string                 `json:"user_id"`
	StartedAt             time.Time              `json:"started_at"`
	LastAccessedAt        time.Time              `json:"last_accessed_at"`
	ExpiresAt             time.Time              `json:"expires_at"`
	Roles                 []string               `json:"roles"`
	CustomClaims          map[string]any         `json:"custom_claims"`
	AuthenticationFactors []AuthenticationFactor `json:"authentication_factors"`
}

// JWK is one public key that verifies session JWTs: EC P-256, ES256.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the set of keys of <prefix>.sessions.jwks (the same set as the
// worker's GET /.well-known/jwks.json).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Key returns the key with the given kid.
func (s JWKS) Key(kid string) (JWK, bool) {
	for _, k := range s.Keys {
		if k.Kid == kid {
			return k, true
		}
	}
	return JWK{}, false
}

// PublicKey returns the key as an ECDSA P-256 public key, to verify a
// session JWT's ES256 signature with a JOSE library or crypto/ecdsa.
func (k JWK) PublicKey() (*ecdsa.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != "P-256" {
		return nil, fmt.Errorf("tat: jwk %q: want kty EC, crv P-256; got %s %s", k.Kid, k.Kty, k.Crv)
	}
	x, errX := base64.RawURLEncoding.DecodeString(k.X)
	y, errY := base64.RawURLEncoding.DecodeString(k.Y)
	if err := errors.Join(errX, errY); err != nil || len(x) != 32 || len(y) != 32 {
		return nil, fmt.Errorf("tat: jwk %q: x and y must be 32 bytes of base64url", k.Kid)
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("tat: jwk %q: %w", k.Kid, err)
	}
	return pub, nil
}
