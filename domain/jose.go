package domain

// The JOSE code that stays the worker's own: strict base64url, the key and
// algorithm binding, and the thin calls into github.com/lestrrat-go/jwx/v3,
// which does the JOSE work that is not a rule of ours (signatures, JWK
// import and RFC 7638 thumbprints). The token checklist that uses these is
// in token*.go; docs/decisions/0001-jose-on-jwx.md says who does what.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// The problems DecodeBase64URL names, in the words the token errors use.
var (
	errB64Padding    = errors.New("has base64 padding; base64url without padding is required")
	errB64Standard   = errors.New("uses standard base64 characters; base64url is required")
	errB64Whitespace = errors.New("contains whitespace")
	errB64Foreign    = errors.New("contains a character outside base64url")
	errB64Invalid    = errors.New("is not valid base64url")
)

// DecodeBase64URL decodes s as JOSE base64url (RFC 7515 section 2): the URL
// alphabet only, no padding, no whitespace and zero trailing bits, so that
// one value has exactly one spelling. jwx decodes leniently (standard or URL
// alphabet, padded or not), so every base64url value read from outside is
// checked here first. The error names the first problem and quotes nothing
// of s.
func DecodeBase64URL(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '=':
			return nil, errB64Padding
		case c == '+' || c == '/':
			return nil, errB64Standard
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f':
			return nil, errB64Whitespace
		default:
			return nil, errB64Foreign
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errB64Invalid
	}
	return b, nil
}

// b64url encodes b as base64url without padding.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// keyHints are the header members that carry or point at a key. The
// verifier ignores them (keys come from the profile only, and nothing is
// fetched), but jwx reads each with its type: jwk must be a valid JWK (an
// RSA one of at least 2048 bits), x5c X.509 certificates, the others
// strings.
var keyHints = []string{"jwk", "jku", "x5c", "x5t", "x5t#S256", "x5u"}

// keyHintsReadable reports whether jwx reads the key hints of a header
// that has any: a token whose hints jwx refuses is refused too, so that we
// never accept a token that jwx, or a relying party using it, would not.
// header is the header as decoded by decodeStrictObject, headerJSON its
// bytes.
func keyHintsReadable(header map[string]any, headerJSON []byte) bool {
	if !slices.ContainsFunc(keyHints, func(name string) bool { _, ok := header[name]; return ok }) {
		return true
	}
	return json.Unmarshal(headerJSON, jws.NewHeaders()) == nil
}

// SignJWT returns claims as a compact JWS signed by jwx with key under alg,
// the protected header holding alg, typ JWT and, when not empty, kid. The
// claims are encoded with encoding/json as they are, so the payload holds
// exactly the members given. An alg that does not fit the key (ES256 with a
// P-384 key, RS256 with an EC key) is an error.
func SignJWT(key crypto.Signer, alg, kid string, claims map[string]any) (string, error) {
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok || !SupportedAlg(alg) {
		return "", fmt.Errorf("jose: unsupported algorithm %q", alg)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jose: encode claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	if kid != "" {
		if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
			return "", err
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(a, key, jws.WithProtectedHeaders(hdr)), jws.WithStrictECDSA(true))
	if err != nil {
		return "", fmt.Errorf("jose: sign: %w", err)
	}
	return string(out), nil
}

// verifySignature reports whether sig is a valid alg signature of the JWS
// signing input by key. The key must fit alg (see keyFits); the signature
// is then checked by jwx's verifier for alg, the one jws.Verify uses, on the
// signing input and signature PrecheckToken took apart: the token is parsed
// once, by our rules.
func verifySignature(alg string, key crypto.PublicKey, input, sig []byte) bool {
	if !keyFits(alg, key) {
		return false
	}
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		return false
	}
	v, err := jws.VerifierFor(a)
	if err != nil {
		return false
	}
	return v.Verify(key, input, sig) == nil
}

// keyFits reports whether key is a complete public key that may verify alg:
// AlgsForKey's answer, so an RSA key of fewer than MinRSABits bits fits
// nothing and an EC key fits only the ES algorithm of its curve (RFC 7518
// section 3.4). jwx binds neither when it verifies (it checks an ES256
// signature with a P-384 key, and any RSA size), and a hand-built
// incomplete key would make the standard library panic, so this runs before
// every verification.
func keyFits(alg string, key crypto.PublicKey) bool {
	return slices.Contains(AlgsForKey(key), alg)
}

// ecPoint returns pub as an uncompressed point (0x04 || X || Y, each
// coordinate at full field size), or nil when pub is not a complete point on
// P-256, P-384 or P-521. A hand-built key with missing coordinates makes the
// standard library panic; that is caught here, so callers need not read the
// deprecated coordinate fields to guard against it.
func ecPoint(pub *ecdsa.PublicKey) (point []byte) {
	if pub == nil {
		return nil
	}
	switch pub.Curve {
	case elliptic.P256(), elliptic.P384(), elliptic.P521():
	default:
		return nil
	}
	defer func() {
		if recover() != nil {
			point = nil
		}
	}()
	b, err := pub.Bytes()
	if err != nil {
		return nil
	}
	return b
}

// JWKThumbprint returns the RFC 7638 thumbprint of key, computed by jwx:
// the base64url (unpadded) SHA-256 of its canonical JWK, the required
// members in lexicographic order with no whitespace (EC coordinates at full
// field size, RFC 7518 section 6.2.1.2; Ed25519 as RFC 8037 says). It
// supports RSA (of at least the 2048 bits jwx imports), EC on P-256, P-384
// and P-521, and Ed25519; anything else, or an incomplete key, is an error.
func JWKThumbprint(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.N.Sign() <= 0 || k.E <= 0 {
			return "", errors.New("jose: incomplete RSA public key")
		}
	case *ecdsa.PublicKey:
		if ecPoint(k) == nil {
			return "", errors.New("jose: EC public key not on P-256, P-384 or P-521")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("jose: Ed25519 public key of the wrong size")
		}
	default:
		return "", fmt.Errorf("jose: unsupported key type %T", key)
	}
	j, err := jwk.Import(key)
	if err != nil {
		return "", fmt.Errorf("jose: %w", err)
	}
	sum, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jose: %w", err)
	}
	return b64url(sum), nil
}
