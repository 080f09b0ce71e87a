package domain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
)

// MaxRSABits is the largest RSA modulus a profile may trust: verifying with a
// bigger key costs more CPU than any issuer needs.
const MaxRSABits = 8192

// MaxPEMBytes caps the text ParsePEMPublicKey reads; an 8192-bit RSA public
// key is about 1.5 KiB of PEM.
const MaxPEMBytes = 16 << 10

// ParsePEMPublicKey parses the one public key of a profile. pemText must be
// exactly one PEM block, with nothing but whitespace around it and no PEM
// headers: "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS #1). The key must be
// RSA of MinRSABits to MaxRSABits bits with an odd exponent of at least 3, EC
// on P-256, P-384 or P-521, or Ed25519. Private keys, certificates, other
// curves and key types, and anything else are refused with ErrProfileInvalid
// and a message saying why.
//
// The returned key's KID is its RFC 7638 JWK thumbprint (see JWKThumbprint)
// and its Algs are AlgsForKey.
func ParsePEMPublicKey(pemText string) (PublicKey, error) {
	if len(pemText) > MaxPEMBytes {
		return PublicKey{}, ErrProfileInvalid.With("the PEM text is larger than %d bytes", MaxPEMBytes)
	}
	text := strings.TrimSpace(pemText)
	if text == "" {
		return PublicKey{}, ErrProfileInvalid.With("the PEM text is empty")
	}
	if !strings.HasPrefix(text, "-----BEGIN ") {
		return PublicKey{}, ErrProfileInvalid.With("the PEM text must start with a -----BEGIN line")
	}
	// pem.Decode skips a malformed block to find a later one, so count the
	// blocks first: exactly one is allowed.
	if strings.Count(text, "-----BEGIN ") > 1 {
		return PublicKey{}, ErrProfileInvalid.With("the PEM text holds more than one block; give one public key per PEM")
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return PublicKey{}, ErrProfileInvalid.With("the PEM text holds no valid PEM block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return PublicKey{}, ErrProfileInvalid.With("the PEM text has data after the END line")
	}
	if len(block.Headers) != 0 {
		return PublicKey{}, ErrProfileInvalid.With("the PEM block has headers (encrypted or annotated); give a plain public key")
	}

	var (
		key crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return PublicKey{}, ErrProfileInvalid.Wrap(err, "the PUBLIC KEY block is not a supported PKIX public key")
		}
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return PublicKey{}, ErrProfileInvalid.Wrap(err, "the RSA PUBLIC KEY block is not a valid PKCS #1 public key")
		}
	case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE":
		return PublicKey{}, ErrProfileInvalid.With("certificates are not accepted; give the PUBLIC KEY block of the signing key")
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return PublicKey{}, ErrProfileInvalid.With("this is a private key; give only the public key (PUBLIC KEY block)")
		}
		return PublicKey{}, ErrProfileInvalid.With("PEM block type %s is not supported; give a PUBLIC KEY block", quoteShort(block.Type))
	}

	if err := checkTrustableKey(key); err != nil {
		return PublicKey{}, err
	}
	kid, err := JWKThumbprint(key)
	if err != nil {
		return PublicKey{}, ErrProfileInvalid.Wrap(err, "the public key cannot be encoded as a JWK")
	}
	return PublicKey{KID: kid, Algs: AlgsForKey(key), Key: key}, nil
}

// checkTrustableKey refuses key types, curves and sizes a profile may not
// trust, with ErrProfileInvalid.
func checkTrustableKey(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < MinRSABits {
			return ErrProfileInvalid.With("the RSA key has %d bits; at least %d are required", bits, MinRSABits)
		}
		if bits > MaxRSABits {
			return ErrProfileInvalid.With("the RSA key has %d bits; at most %d are accepted", bits, MaxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return ErrProfileInvalid.With("the RSA key's public exponent %d is not valid", k.E)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return ErrProfileInvalid.With("the EC key is on curve %s; only P-256, P-384 and P-521 are accepted", curveName(k.Curve))
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return ErrProfileInvalid.With("the Ed25519 key is not %d bytes", ed25519.PublicKeySize)
		}
	default:
		return ErrProfileInvalid.With("the key type %T is not accepted; use RSA, EC (P-256, P-384, P-521) or Ed25519", key)
	}
	if len(AlgsForKey(key)) == 0 {
		return ErrProfileInvalid.With("the key admits no signature algorithm")
	}
	return nil
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown"
	}
	return c.Params().Name
}
