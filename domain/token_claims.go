package domain

import (
	"encoding/json"
	"math"
	"net/mail"
	"strconv"
	"time"
)

// maxNumericDate is 9999-12-31T23:59:59Z: later dates are refused rather
// than overflowing time arithmetic.
const maxNumericDate = 253402300799

// checkClaims applies the claim rules of (*ParsedToken).Verify in order and
// returns the token with its claims pulled out (Alg, KID and Claims unset).
func checkClaims(c map[string]any, pol TokenPolicy, now time.Time) (*VerifiedToken, error) {
	vt := &VerifiedToken{}

	iss, ok := c["iss"].(string)
	if !ok {
		return nil, ErrInvalidIssuer.With("the token has no iss string")
	}
	if iss != pol.Issuer {
		return nil, ErrInvalidIssuer.With("the token's iss is not the profile's issuer")
	}
	vt.Issuer = iss

	if err := checkAudience(c["aud"], pol.Audience); err != nil {
		return nil, err
	}

	if v, ok := c["exp"]; !ok || v == nil {
		return nil, ErrInvalidClaims.With("the token has no exp")
	}
	exp, _, err := numericDate(c, "exp")
	if err != nil {
		return nil, err
	}
	if now.After(exp.Add(pol.Skew)) {
		return nil, ErrExpired.With("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	vt.ExpiresAt = exp

	nbf, present, err := numericDate(c, "nbf")
	if err != nil {
		return nil, err
	}
	if present {
		if nbf.After(now.Add(pol.Skew)) {
			return nil, ErrNotYetValid.With("the token is not valid before %s", nbf.UTC().Format(time.RFC3339))
		}
		vt.NotBefore = nbf
	}

	iat, hasIat, err := numericDate(c, "iat")
	if err != nil {
		return nil, err
	}
	if hasIat {
		if iat.After(now.Add(pol.Skew)) {
			return nil, ErrNotYetValid.With("the token was issued in the future (%s)", iat.UTC().Format(time.RFC3339))
		}
		vt.IssuedAt = iat
	}

	if pol.MaxLifetime > 0 {
		from := now
		if hasIat {
			from = iat
		}
		if exp.Sub(from) > pol.MaxLifetime {
			return nil, ErrInvalidClaims.With("the token lives longer than the profile's maximum of %s", pol.MaxLifetime)
		}
	}

	if sub, ok := c["sub"]; ok {
		s, isString := sub.(string)
		if !isString {
			return nil, ErrInvalidClaims.With("the token's sub is not a string")
		}
		vt.Subject = s
	}

	if err := mapClaims(c, pol.Mapping, vt); err != nil {
		return nil, err
	}

	// RFC 7519 types jti as a string; JWT libraries refuse a token whose
	// jti is anything else, so we do too, mapped or not.
	if jti, ok := c["jti"]; ok {
		if _, isString := jti.(string); !isString {
			return nil, ErrInvalidClaims.With("the token's jti is not a string")
		}
	}
	return vt, nil
}

// checkAudience accepts aud as a string equal to want or an array of
// strings containing it; anything else is ErrInvalidAudience.
func checkAudience(aud any, want string) error {
	switch a := aud.(type) {
	case nil:
		return ErrInvalidAudience.With("the token has no aud")
	case string:
		if a == want {
			return nil
		}
	case []any:
		found := false
		for _, v := range a {
			s, ok := v.(string)
			if !ok {
				return ErrInvalidAudience.With("the token's aud array holds a non-string")
			}
			found = found || s == want
		}
		if found {
			return nil
		}
	default:
		return ErrInvalidAudience.With("the token's aud is neither a string nor an array of strings")
	}
	return ErrInvalidAudience.With("the token's aud does not contain the profile's audience")
}

// numericDate reads claim name as an RFC 7519 NumericDate: a JSON number of
// seconds since the epoch, possibly fractional, between 0 and
// maxNumericDate. present is false when the claim is absent; null is
// present and not a number (JWT libraries refuse it too).
func numericDate(c map[string]any, name string) (t time.Time, present bool, err error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, ErrInvalidClaims.With("the token's %s is not a number", name)
	}
	f, perr := strconv.ParseFloat(string(n), 64)
	if perr != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, ErrInvalidClaims.With("the token's %s is not a date between 1970 and 9999", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// mapClaims pulls the mapped attributes out of the claims into vt.
func mapClaims(c map[string]any, m AttributeMapping, vt *VerifiedToken) error {
	email, err := requiredString(c, m.Email, "email")
	if err != nil {
		return err
	}
	if len(email) > MaxEmailBytes {
		return ErrInvalidClaims.With("the token's email claim is longer than %d bytes", MaxEmailBytes)
	}
	if _, err := NormalizeEmail(email); err != nil || !bareEmail(email) {
		return ErrInvalidClaims.With("the token's email claim is not a valid email address")
	}
	vt.Email = email

	tokenID, err := requiredString(c, m.TokenID, "token id")
	if err != nil {
		return err
	}
	if len(tokenID) > MaxTokenIDBytes {
		return ErrInvalidClaims.With("the token's token id claim is longer than %d bytes", MaxTokenIDBytes)
	}
	vt.TokenID = tokenID

	if m.ExternalUserID != "" {
		if v, ok := c[m.ExternalUserID]; ok {
			s, isString := v.(string)
			if !isString {
				return ErrInvalidClaims.With("the token's external user id claim is not a string")
			}
			vt.ExternalUserID = s
		}
	}

	if m.RoleIDs != "" {
		if v, ok := c[m.RoleIDs]; ok {
			list, isList := v.([]any)
			if !isList {
				return ErrInvalidClaims.With("the token's role ids claim is not an array of strings")
			}
			roles := make([]string, 0, len(list))
			for _, r := range list {
				s, isString := r.(string)
				if !isString {
					return ErrInvalidClaims.With("the token's role ids claim is not an array of strings")
				}
				roles = append(roles, s)
			}
			vt.RoleIDs = roles
		}
	}
	return nil
}

// requiredString returns claim name as a non-empty string; what names the
// attribute in the error.
func requiredString(c map[string]any, name, what string) (string, error) {
	v, ok := c[name]
	if !ok {
		return "", ErrInvalidClaims.With("the token has no %s claim", what)
	}
	s, ok := v.(string)
	if !ok {
		return "", ErrInvalidClaims.With("the token's %s claim is not a string", what)
	}
	if s == "" {
		return "", ErrInvalidClaims.With("the token's %s claim is empty", what)
	}
	return s, nil
}

// bareEmail reports whether s is exactly one address in its plain form:
// what net/mail parses, with no display name, comment or angle brackets,
// and no surrounding white space (which NormalizeEmail would trim).
func bareEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}
