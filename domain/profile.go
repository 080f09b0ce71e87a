package domain

import (
	"net/url"
	"strings"
	"time"
)

// MaxPEMKeys is how many static public keys one profile may hold.
const MaxPEMKeys = 5

// ProfileSpec is the profile as a command sends it (contract section 3).
type ProfileSpec struct {
	ProfileID        string           `json:"profile_id,omitempty"`
	Name             string           `json:"name"`
	Issuer           string           `json:"issuer"`
	Audience         string           `json:"audience"`
	JWKSURL          string           `json:"jwks_url,omitempty"`
	PublicKeys       []string         `json:"public_keys,omitempty"`
	AttributeMapping AttributeMapping `json:"attribute_mapping"`
	CanJITProvision  bool             `json:"can_jit_provision"`
	// MaxTokenLifetimeSeconds, when above zero, refuses tokens whose
	// lifetime (exp - iat) is longer. An extension of the contract.
	MaxTokenLifetimeSeconds int64 `json:"max_token_lifetime_seconds,omitempty"`
}

// Profile is a validated trusted-auth-token profile. Its JSON form is the
// one replies and events carry: public material only.
type Profile struct {
	ProfileSpec
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	keys []PublicKey
}

// ProfileRules are the deployment's settings that bound a profile.
type ProfileRules struct {
	// AllowHTTPJWKS admits plain-http jwks_url (TAT_JWKS_ALLOW_LOCAL).
	AllowHTTPJWKS bool
}

// NewProfile validates spec and returns the profile it describes, with the
// given id, version and times. Every problem is a
// trusted_token_profile_invalid_request (or too_many_pem_files_...).
func NewProfile(spec ProfileSpec, rules ProfileRules, version int64, created, updated time.Time) (Profile, error) {
	p := Profile{ProfileSpec: spec, Version: version, CreatedAt: created.UTC().Truncate(time.Second), UpdatedAt: updated.UTC().Truncate(time.Second)}
	if !ValidCommandID(spec.ProfileID) {
		return Profile{}, ErrProfileInvalid.With("profile_id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	if len(spec.Name) > 256 {
		return Profile{}, ErrProfileInvalid.With("name is longer than 256 characters")
	}
	if spec.Issuer == "" || len(spec.Issuer) > 2048 {
		return Profile{}, ErrProfileInvalid.With("issuer is required (at most 2048 characters)")
	}
	if spec.Audience == "" || len(spec.Audience) > 2048 {
		return Profile{}, ErrProfileInvalid.With("audience is required (at most 2048 characters)")
	}
	if err := validateMapping(spec.AttributeMapping); err != nil {
		return Profile{}, err
	}
	if spec.MaxTokenLifetimeSeconds < 0 {
		return Profile{}, ErrProfileInvalid.With("max_token_lifetime_seconds must not be negative")
	}
	switch {
	case spec.JWKSURL != "" && len(spec.PublicKeys) > 0:
		return Profile{}, ErrProfileInvalid.With("give jwks_url or public_keys, not both")
	case spec.JWKSURL == "" && len(spec.PublicKeys) == 0:
		return Profile{}, ErrProfileInvalid.With("one of jwks_url or public_keys is required")
	case spec.JWKSURL != "":
		if err := validateJWKSURL(spec.JWKSURL, rules); err != nil {
			return Profile{}, err
		}
	default:
		if len(spec.PublicKeys) > MaxPEMKeys {
			return Profile{}, ErrTooManyPEMs.With("a profile holds at most %d public keys, got %d", MaxPEMKeys, len(spec.PublicKeys))
		}
		seen := map[string]bool{}
		for i, text := range spec.PublicKeys {
			k, err := ParsePEMPublicKey(text)
			if err != nil {
				return Profile{}, ErrProfileInvalid.Wrap(err, "public_keys[%d]: %s", i, AsError(err).Message)
			}
			if seen[k.KID] {
				return Profile{}, ErrProfileInvalid.With("public_keys[%d] repeats another key", i)
			}
			seen[k.KID] = true
			p.keys = append(p.keys, k)
		}
	}
	return p, nil
}

// StaticKeys returns the parsed PEM keys (nil for a JWKS profile).
func (p Profile) StaticKeys() []PublicKey { return p.keys }

// UsesJWKS reports whether the profile's keys come from a JWKS URL.
func (p Profile) UsesJWKS() bool { return p.JWKSURL != "" }

// Policy returns the token policy the profile imposes.
func (p Profile) Policy(skew time.Duration, maxTokenBytes int) TokenPolicy {
	return TokenPolicy{
		Issuer:        p.Issuer,
		Audience:      p.Audience,
		Mapping:       p.AttributeMapping,
		MaxLifetime:   time.Duration(p.MaxTokenLifetimeSeconds) * time.Second,
		Skew:          skew,
		MaxTokenBytes: maxTokenBytes,
	}
}

func validateMapping(m AttributeMapping) error {
	check := func(name, claim string, required bool) error {
		if claim == "" {
			if required {
				return ErrProfileInvalid.With("attribute_mapping.%s is required", name)
			}
			return nil
		}
		if len(claim) > 256 {
			return ErrProfileInvalid.With("attribute_mapping.%s is longer than 256 characters", name)
		}
		return nil
	}
	for _, c := range []struct {
		name, claim string
		required    bool
	}{{"email", m.Email, true}, {"token_id", m.TokenID, true}, {"external_user_id", m.ExternalUserID, false}, {"role_ids", m.RoleIDs, false}} {
		if err := check(c.name, c.claim, c.required); err != nil {
			return err
		}
	}
	return nil
}

func validateJWKSURL(raw string, rules ProfileRules) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || len(raw) > 2048 {
		return ErrProfileInvalid.With("jwks_url is not a valid absolute URL")
	}
	if u.User != nil || u.Fragment != "" {
		return ErrProfileInvalid.With("jwks_url must not carry credentials or a fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !rules.AllowHTTPJWKS {
			return ErrProfileInvalid.With("jwks_url must use https (plain http needs TAT_JWKS_ALLOW_LOCAL=true)")
		}
	default:
		return ErrProfileInvalid.With("jwks_url must use https")
	}
	return nil
}
