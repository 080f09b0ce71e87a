package domain

import (
	"crypto/ed25519"
	"errors"
	"maps"
	"time"
)

// ErrUnknownKID is the cause of the ErrInvalidToken returned when the
// token's kid names no key of the profile: errors.Is(err, ErrUnknownKID)
// tells the caller that refetching the JWKS (once, rate limited) may help.
var ErrUnknownKID = errors.New("no trusted key has the token's kid")

// VerifyToken checks a trusted token against a profile's policy and keys at
// time now, in RFC order, one named error per rule:
//
//   - the policy itself must be valid (else ErrInternal: a stored profile is
//     broken, not the token);
//   - PrecheckToken with pol.MaxTokenBytes (ErrInvalidToken);
//   - key choice: with a kid, only keys with that KID are candidates, and
//     none is ErrInvalidToken caused by ErrUnknownKID; without a kid (or
//     with an empty one), every key is a candidate. A candidate must allow the header's alg
//     (PublicKey.Allows), else ErrInvalidToken;
//   - the signature must verify with one candidate (ErrInvalidToken): an
//     ECDSA signature must be raw r||s of the curve's size and an EdDSA one
//     64 bytes (other lengths, DER included, refused by name); the key must
//     fit the alg (AlgsForKey: type, curve, RSA size); then jwx's verifier
//     for the alg checks it (RSA PKCS #1 v1.5, or PSS with the salt length
//     equal to the hash size; ECDSA; Ed25519);
//   - the claims, see the checks of (*ParsedToken).Verify.
//
// The raw token never appears in an error.
func VerifyToken(raw string, pol TokenPolicy, keys []PublicKey, now time.Time) (*VerifiedToken, error) {
	if err := pol.Validate(); err != nil {
		return nil, ErrInternal.Wrap(err, "the token policy is not valid")
	}
	p, err := PrecheckToken(raw, pol.maxTokenBytes())
	if err != nil {
		return nil, err
	}
	return p.Verify(pol, keys, now)
}

// Verify finishes what PrecheckToken started: the key choice and signature
// of VerifyToken, then the claims at time now with pol.Skew of tolerance:
//
//   - iss must equal pol.Issuer exactly (ErrInvalidIssuer, also when
//     missing or not a string);
//   - aud, a string or an array of strings, must contain pol.Audience
//     (ErrInvalidAudience, also when missing or of another type);
//   - exp is required and numeric (ErrInvalidClaims); now > exp+skew is
//     ErrExpired;
//   - nbf, when present, numeric (null is not) and not after now+skew
//     (ErrNotYetValid);
//   - iat, when present, numeric (null is not) and not after now+skew
//     (ErrNotYetValid);
//   - with pol.MaxLifetime, exp-iat (exp-now without iat) must not exceed
//     it (ErrInvalidClaims);
//   - sub, when present, a string (ErrInvalidClaims);
//   - the mapped email and token id claims must be non-empty strings, the
//     email a bare address (no display name) of at most MaxEmailBytes
//     that NormalizeEmail accepts (no ambiguous Unicode), the
//     token id at most MaxTokenIDBytes; a mapped external user id, when
//     present, a string; mapped role ids, when present, an array of strings
//     (all ErrInvalidClaims);
//   - jti, when present, a string, mapped or not (ErrInvalidClaims).
//
// Numeric dates may be fractional and must lie between 0 and the end of
// year 9999.
func (p *ParsedToken) Verify(pol TokenPolicy, keys []PublicKey, now time.Time) (*VerifiedToken, error) {
	if err := pol.Validate(); err != nil {
		return nil, ErrInternal.Wrap(err, "the token policy is not valid")
	}
	if p == nil || p.claims == nil {
		return nil, ErrInvalidToken.With("the token was not prechecked")
	}
	if limit := pol.maxTokenBytes(); p.size > limit {
		return nil, ErrInvalidToken.With("the token is larger than %d bytes", limit)
	}
	key, err := p.verifySignature(keys)
	if err != nil {
		return nil, err
	}
	vt, err := checkClaims(p.claims, pol, now)
	if err != nil {
		return nil, err
	}
	vt.Alg = p.alg
	vt.KID = key.KID
	vt.Claims = maps.Clone(p.claims)
	return vt, nil
}

// verifySignature picks the candidate keys and returns the one whose
// signature check passed.
func (p *ParsedToken) verifySignature(keys []PublicKey) (PublicKey, error) {
	alg := p.alg
	if !supportedAlgs[alg] {
		return PublicKey{}, ErrInvalidToken.With("the algorithm %s is not supported", quoteShort(alg))
	}
	var candidates []PublicKey
	if p.kid != "" {
		named := false
		for _, k := range keys {
			if k.KID != p.kid {
				continue
			}
			named = true
			if k.Allows(alg) {
				candidates = append(candidates, k)
			}
		}
		if !named {
			return PublicKey{}, ErrInvalidToken.Wrap(ErrUnknownKID, "the token's kid names no trusted key")
		}
		if len(candidates) == 0 {
			return PublicKey{}, ErrInvalidToken.With("the key named by kid does not allow the algorithm %s", alg)
		}
	} else {
		for _, k := range keys {
			if k.Allows(alg) {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			return PublicKey{}, ErrInvalidToken.With("no trusted key allows the algorithm %s", alg)
		}
	}

	if n := ecdsaSigSize(alg); n != 0 && len(p.signature) != n {
		return PublicKey{}, ErrInvalidToken.With("an %s signature must be %d bytes (raw r||s), not %d", alg, n, len(p.signature))
	}
	if alg == "EdDSA" && len(p.signature) != ed25519.SignatureSize {
		return PublicKey{}, ErrInvalidToken.With("an EdDSA signature must be %d bytes, not %d", ed25519.SignatureSize, len(p.signature))
	}
	for _, k := range candidates {
		if verifySignature(alg, k.Key, p.signingInput, p.signature) {
			return k, nil
		}
	}
	return PublicKey{}, ErrInvalidToken.With("the token's signature does not verify with any trusted key")
}

// ecdsaSigSize returns the raw r||s size of an ES algorithm, 0 for others.
func ecdsaSigSize(alg string) int {
	switch alg {
	case "ES256":
		return 64
	case "ES384":
		return 96
	case "ES512":
		return 132
	}
	return 0
}
