package domain

import (
	"slices"
	"time"
)

// Session duration bounds, in minutes (contract section 5).
const (
	MinSessionMinutes = 5
	MaxSessionMinutes = 527040
)

// Factor types of the contract.
const (
	FactorTrustedAuthToken  = "trusted_auth_token"
	DeliveryTrustedExchange = "trusted_token_exchange"
)

// TrustedAuthTokenFactor names the token and profile behind a factor.
type TrustedAuthTokenFactor struct {
	TokenID   string `json:"token_id"`
	ProfileID string `json:"profile_id"`
}

// AuthenticationFactor is one way the session's user proved who they are.
type AuthenticationFactor struct {
	Type                   string                  `json:"type"`
	DeliveryMethod         string                  `json:"delivery_method"`
	CreatedAt              time.Time               `json:"created_at"`
	UpdatedAt              time.Time               `json:"updated_at"`
	LastAuthenticatedAt    time.Time               `json:"last_authenticated_at"`
	TrustedAuthTokenFactor *TrustedAuthTokenFactor `json:"trusted_auth_token_factor,omitempty"`
}

// Session is a session in the JSON form replies and events carry: it holds
// no secret (the session token is derived from the id, see the issuer).
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

// SessionState is a session with what the worker keeps beside it: its
// revision (each change inserts revision+1 under a unique key) and whether
// it was revoked.
type SessionState struct {
	Session  Session
	Revision int64
	Revoked  bool
}

// Active reports whether the session may be used at now.
func (s SessionState) Active(now time.Time) bool {
	return !s.Revoked && now.Before(s.Session.ExpiresAt)
}

// ValidateSessionDuration checks session_duration_minutes.
func ValidateSessionDuration(minutes int) error {
	if minutes < MinSessionMinutes || minutes > MaxSessionMinutes {
		return ErrInvalidSessionDuration.With("session_duration_minutes must be between %d and %d, got %d", MinSessionMinutes, MaxSessionMinutes, minutes)
	}
	return nil
}

// FactorEvidence is what an accepted token contributes to a session.
type FactorEvidence struct {
	ProfileID string
	TokenID   string
	Roles     []string // nil when the profile maps no role_ids or the token has none
}

// NewSession starts a session for userID at now.
func NewSession(id, userID string, ev FactorEvidence, claims map[string]any, now time.Time, minutes int) Session {
	now = now.UTC().Truncate(time.Second)
	s := Session{
		SessionID:      id,
		UserID:         userID,
		StartedAt:      now,
		LastAccessedAt: now,
		ExpiresAt:      now.Add(time.Duration(minutes) * time.Minute),
		Roles:          nonNil(ev.Roles),
		CustomClaims:   MergeClaims(nil, claims),
	}
	s.AuthenticationFactors = []AuthenticationFactor{newFactor(ev, now)}
	return s
}

// AttachFactor returns s with the trusted-auth-token factor of ev added, or
// refreshed when the session already holds one from the same profile; with
// minutes > 0 the expiry moves to now plus that many minutes. Claims merge
// into the session's (a nil value deletes a key).
func AttachFactor(s Session, ev FactorEvidence, claims map[string]any, now time.Time, minutes int) Session {
	now = now.UTC().Truncate(time.Second)
	out := s
	out.LastAccessedAt = now
	if minutes > 0 {
		out.ExpiresAt = now.Add(time.Duration(minutes) * time.Minute)
	}
	if ev.Roles != nil {
		out.Roles = nonNil(ev.Roles)
	}
	out.CustomClaims = MergeClaims(s.CustomClaims, claims)
	out.AuthenticationFactors = slices.Clone(s.AuthenticationFactors)
	for i, f := range out.AuthenticationFactors {
		if f.Type == FactorTrustedAuthToken && f.TrustedAuthTokenFactor != nil && f.TrustedAuthTokenFactor.ProfileID == ev.ProfileID {
			f.UpdatedAt, f.LastAuthenticatedAt = now, now
			f.TrustedAuthTokenFactor = &TrustedAuthTokenFactor{TokenID: ev.TokenID, ProfileID: ev.ProfileID}
			out.AuthenticationFactors[i] = f
			return out
		}
	}
	out.AuthenticationFactors = append(out.AuthenticationFactors, newFactor(ev, now))
	return out
}

func newFactor(ev FactorEvidence, now time.Time) AuthenticationFactor {
	return AuthenticationFactor{
		Type:                   FactorTrustedAuthToken,
		DeliveryMethod:         DeliveryTrustedExchange,
		CreatedAt:              now,
		UpdatedAt:              now,
		LastAuthenticatedAt:    now,
		TrustedAuthTokenFactor: &TrustedAuthTokenFactor{TokenID: ev.TokenID, ProfileID: ev.ProfileID},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
