package domain

import (
	"strings"
	"time"
)

// DefaultMaxTokenBytes is the size cap of a trusted token when the policy
// sets none.
const DefaultMaxTokenBytes = 16 << 10

// MaxTokenIDBytes and MaxEmailBytes cap the two required mapped claims.
const (
	MaxTokenIDBytes = 256
	MaxEmailBytes   = 254
)

// AttributeMapping maps attribute -> claim name: which payload claim holds
// each attribute of the user. Any claim name is allowed ("email", "jti",
// "https://example.com/email"). Email and TokenID are required;
// ExternalUserID and RoleIDs are optional (empty: not mapped).
type AttributeMapping struct {
	Email          string `json:"email"`
	TokenID        string `json:"token_id"`
	ExternalUserID string `json:"external_user_id,omitempty"`
	RoleIDs        string `json:"role_ids,omitempty"`
}

// Validate reports every problem of the mapping at once, as
// ErrProfileInvalid: Email and TokenID must name a claim.
func (m AttributeMapping) Validate() error {
	return problems(m.problems())
}

func (m AttributeMapping) problems() []string {
	var p []string
	if m.Email == "" {
		p = append(p, "attribute_mapping.email must name a claim")
	}
	if m.TokenID == "" {
		p = append(p, "attribute_mapping.token_id must name a claim")
	}
	return p
}

// problems turns a list of problems into one ErrProfileInvalid, or nil.
func problems(p []string) error {
	if len(p) == 0 {
		return nil
	}
	return ErrProfileInvalid.With("%s", strings.Join(p, "; "))
}

// TokenPolicy is what a profile demands of its tokens, as VerifyToken
// checks it.
type TokenPolicy struct {
	// Issuer must equal the token's iss exactly.
	Issuer string
	// Audience must be the token's aud, or one of its elements.
	Audience string
	// Mapping names the claims that carry the user's attributes.
	Mapping AttributeMapping
	// MaxLifetime, when not 0, caps exp-iat (or exp-now when the token has
	// no iat).
	MaxLifetime time.Duration
	// Skew is the clock skew allowed on exp, nbf and iat, e.g. 60s.
	Skew time.Duration
	// MaxTokenBytes caps the raw token; 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int
}

// Validate reports every problem of the policy at once, as
// ErrProfileInvalid: issuer and audience set, a valid mapping, and no
// negative duration or size.
func (p TokenPolicy) Validate() error {
	var list []string
	if p.Issuer == "" {
		list = append(list, "issuer is required")
	}
	if p.Audience == "" {
		list = append(list, "audience is required")
	}
	list = append(list, p.Mapping.problems()...)
	if p.MaxLifetime < 0 {
		list = append(list, "max lifetime must not be negative")
	}
	if p.Skew < 0 {
		list = append(list, "clock skew must not be negative")
	}
	if p.MaxTokenBytes < 0 {
		list = append(list, "max token bytes must not be negative")
	}
	return problems(list)
}

func (p TokenPolicy) maxTokenBytes() int {
	if p.MaxTokenBytes <= 0 {
		return DefaultMaxTokenBytes
	}
	return p.MaxTokenBytes
}

// VerifiedToken is a trusted token that passed every check of VerifyToken,
// with the mapped attributes pulled out of its claims.
type VerifiedToken struct {
	// Alg is the header's alg; KID the KID of the key that verified.
	Alg, KID string
	// Issuer is iss; Subject is sub ("" when absent).
	Issuer, Subject string
	// Email and TokenID are the mapped required claims; ExternalUserID is ""
	// when not mapped or absent.
	Email, TokenID, ExternalUserID string
	// RoleIDs is nil when not mapped or absent.
	RoleIDs []string
	// ExpiresAt is exp; IssuedAt and NotBefore are zero when absent.
	ExpiresAt           time.Time
	IssuedAt, NotBefore time.Time
	// Claims holds every payload claim as decoded by encoding/json with
	// UseNumber: numbers are json.Number.
	Claims map[string]any
}
