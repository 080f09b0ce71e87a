package domain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"slices"
)

// PublicKey is one key a profile trusts. The algorithms that may verify with
// it are fixed by the key itself (its type, curve and, for JWKS keys, its
// "alg"), never by the token header.
type PublicKey struct {
	// KID is the key id: from the JWKS, or for a PEM key its RFC 7638
	// thumbprint (base64url SHA-256), so tokens may name either.
	KID string
	// Algs are the JWS algorithms this key verifies; see AlgsForKey.
	Algs []string
	// Key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
}

// Allows reports whether alg may be verified with k.
func (k PublicKey) Allows(alg string) bool { return slices.Contains(k.Algs, alg) }

// MinRSABits is the smallest RSA modulus a profile may trust.
const MinRSABits = 2048

// AlgsForKey returns the JWS algorithms a key of this type admits: the RSA
// family (RS256..512, PS256..512) for RSA of at least MinRSABits, the one ES
// algorithm of an EC key's curve (RFC 7518 section 3.4), EdDSA for Ed25519,
// nothing for anything else (HMAC and "none" can never be reached from a
// public key) nor for an incomplete key (no modulus, a point not on its
// curve, an Ed25519 key of the wrong size).
func AlgsForKey(key crypto.PublicKey) []string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.N.BitLen() < MinRSABits {
			return nil
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		if ecPoint(k) == nil {
			return nil
		}
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil
		}
		return []string{"EdDSA"}
	}
	return nil
}
