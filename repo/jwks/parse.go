package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	jwxjwk "github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tat-worker/attest/domain"
)

// ErrNoUsableKeys is returned (wrapped) by ParseJWKS when a well-formed set
// holds no key that survives the rules.
var ErrNoUsableKeys = errors.New("jwks: no usable signing keys in set")

// maxRSABits bounds RSA moduli: a huge modulus makes every verification
// slow, so an issuer (or whoever controls its URL) could stall the worker.
const maxRSABits = 8192

// maxKeys bounds how many keys one set may list.
const maxKeys = 100

// rawJWK holds the members of one JWK this package reads. Private members
// are read only to refuse keys that carry them.
type rawJWK struct {
	Kty    string
	Use    *string
	KeyOps *[]string
	Alg    string
	Kid    string
	Crv    string
	X      string
	Y      string
	N      string
	E      string
	D      string
	K      string
}

// jwkMembers are the JWK members (RFC 7517 section 4, RFC 7518 section 6)
// whose names parseKey compares: those it reads, and the private ones. A
// key with a member that differs from one of these only in case ("KID",
// "Alg", "D") is refused: encoding/json would have read it as that member,
// another reader would not.
var jwkMembers = []string{
	"kty", "use", "key_ops", "alg", "kid", "x5u", "x5c", "x5t", "x5t#S256",
	"crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi", "oth", "k",
}

// ParseJWKS returns the signature-verification keys of a JWK Set (RFC 7517).
// It is strict. The body must be one JSON object as
// domain.DecodeStrictObject reads it (valid UTF-8, no member name twice at
// any depth, at most domain.MaxJSONDepth levels, nothing after it; its
// size is the caller's bound, Fetcher.MaxBody or the bucket's value size),
// with a "keys" array of at most 100 entries and no member named "keys" in
// another case. Member names are matched exactly. A key is skipped when it
// is not an object, has a member named like a JWK member in another case
// ("KID", "Alg", "D"), has a member it reads that is not a string (key_ops:
// not an array of strings), is symmetric ("oct"), carries private
// material, has "use" other than "sig", has "key_ops" without "verify", is
// malformed (bad base64url, point not on its curve), is RSA under
// domain.MinRSABits or over 8192 bits, is of a type or curve outside RSA,
// P-256/384/521 and Ed25519, or names an "alg" that domain.AlgsForKey does
// not allow for it. A key without "alg" gets every algorithm AlgsForKey
// allows; a key with one gets exactly that one. A key without "kid" gets
// its RFC 7638 thumbprint (domain.JWKThumbprint), as PEM keys do. A set
// with no key left is an error wrapping ErrNoUsableKeys that names why
// each key was skipped.
func ParseJWKS(body []byte) ([]domain.PublicKey, error) {
	keys, _, err := parseSet(body)
	return keys, err
}

// publicMembers are the JWK members a shared set keeps: nothing private can
// pass, whatever else the issuer served beside its public keys.
var publicMembers = []string{"kty", "kid", "use", "alg", "key_ops", "crv", "x", "y", "n", "e"}

// PublicSet parses body like ParseJWKS and returns the accepted keys as a
// new JWK Set holding only their public members. This, never the body as
// served, is what may be shared or stored: a set may carry private keys
// beside its public ones (they are skipped, but they are in the body).
func PublicSet(body []byte) ([]domain.PublicKey, []byte, error) {
	keys, accepted, err := parseSet(body)
	if err != nil {
		return nil, nil, err
	}
	out := make([]map[string]any, 0, len(accepted))
	for _, m := range accepted {
		kept := map[string]any{}
		for _, name := range publicMembers {
			if v, ok := m[name]; ok {
				kept[name] = v
			}
		}
		out = append(out, kept)
	}
	set, err := json.Marshal(map[string]any{"keys": out})
	return keys, set, err
}

// parseSet returns the usable keys of body and, for each, the members it
// was read from.
func parseSet(body []byte) ([]domain.PublicKey, []map[string]any, error) {
	set, err := domain.DecodeStrictObject(body)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: decode set: %w", err)
	}
	if err := exactNames(set, "keys"); err != nil {
		return nil, nil, fmt.Errorf("jwks: set: %w", err)
	}
	list, ok := set["keys"].([]any)
	if !ok {
		return nil, nil, errors.New(`jwks: set has no "keys" array`)
	}
	if len(list) > maxKeys {
		return nil, nil, fmt.Errorf("jwks: set lists %d keys, more than %d", len(list), maxKeys)
	}
	var keys []domain.PublicKey
	var accepted []map[string]any
	var skipped []error
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			skipped = append(skipped, fmt.Errorf("key %d: not a JSON object", i))
			continue
		}
		k, err := parseKey(m)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
		accepted = append(accepted, m)
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoUsableKeys, errors.Join(skipped...))
	}
	return keys, accepted, nil
}

// exactNames refuses a member of m whose name differs from one of names
// only in case (Unicode simple folding, as encoding/json matches names).
func exactNames(m map[string]any, names ...string) error {
	for got := range m {
		for _, name := range names {
			if got != name && strings.EqualFold(got, name) {
				return fmt.Errorf("member %s is %q in another case", quoteName(got), name)
			}
		}
	}
	return nil
}

// quoteName quotes a member name for an error, cut to 32 bytes.
func quoteName(s string) string {
	if len(s) > 32 {
		return strconv.Quote(s[:32]) + "..."
	}
	return strconv.Quote(s)
}

// readJWK reads the members of one key into a rawJWK, exactly by name.
func readJWK(m map[string]any) (rawJWK, error) {
	var j rawJWK
	if err := exactNames(m, jwkMembers...); err != nil {
		return j, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"kty", &j.Kty}, {"alg", &j.Alg}, {"kid", &j.Kid}, {"crv", &j.Crv},
		{"x", &j.X}, {"y", &j.Y}, {"n", &j.N}, {"e", &j.E}, {"d", &j.D}, {"k", &j.K},
	} {
		name, dst := f.name, f.dst
		v, ok := m[name]
		if !ok {
			continue
		}
		s, isString := v.(string)
		if !isString {
			return j, fmt.Errorf("member %q is not a string", name)
		}
		*dst = s
	}
	if v, ok := m["use"]; ok {
		s, isString := v.(string)
		if !isString {
			return j, errors.New(`member "use" is not a string`)
		}
		j.Use = &s
	}
	if v, ok := m["key_ops"]; ok {
		list, isList := v.([]any)
		if !isList {
			return j, errors.New(`member "key_ops" is not an array`)
		}
		ops := make([]string, 0, len(list))
		for _, op := range list {
			s, isString := op.(string)
			if !isString {
				return j, errors.New(`member "key_ops" holds a value that is not a string`)
			}
			ops = append(ops, s)
		}
		j.KeyOps = &ops
	}
	return j, nil
}

func parseKey(m map[string]any) (domain.PublicKey, error) {
	j, err := readJWK(m)
	if err != nil {
		return domain.PublicKey{}, err
	}
	if j.Use != nil && *j.Use != "sig" {
		return domain.PublicKey{}, fmt.Errorf("use %q is not sig", *j.Use)
	}
	if j.KeyOps != nil && !slices.Contains(*j.KeyOps, "verify") {
		return domain.PublicKey{}, errors.New(`key_ops lacks "verify"`)
	}
	if j.D != "" || j.K != "" {
		return domain.PublicKey{}, errors.New("carries private or symmetric key material")
	}
	key, err := importKey(j)
	if err != nil {
		return domain.PublicKey{}, err
	}
	if k, ok := key.(*rsa.PublicKey); ok {
		if bits := k.N.BitLen(); bits < domain.MinRSABits || bits > maxRSABits {
			return domain.PublicKey{}, fmt.Errorf("rsa modulus of %d bits is outside [%d, %d]", bits, domain.MinRSABits, maxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 || k.E > math.MaxInt32 {
			return domain.PublicKey{}, fmt.Errorf("rsa exponent %d is not valid", k.E)
		}
	}
	algs := domain.AlgsForKey(key)
	if len(algs) == 0 {
		return domain.PublicKey{}, errors.New("no algorithm is allowed for this key")
	}
	if j.Alg != "" {
		if !slices.Contains(algs, j.Alg) {
			return domain.PublicKey{}, fmt.Errorf("alg %q does not fit this key", j.Alg)
		}
		algs = []string{j.Alg}
	}
	kid := j.Kid
	if kid == "" {
		if kid, err = domain.JWKThumbprint(key); err != nil {
			return domain.PublicKey{}, err
		}
	}
	return domain.PublicKey{KID: kid, Algs: algs, Key: key}, nil
}

// keyMaterial names, for each key type and curve accepted, the members
// that hold the public key.
var keyMaterial = map[string]map[string][]string{
	"RSA": {"": {"n", "e"}},
	"EC":  {"P-256": {"x", "y"}, "P-384": {"x", "y"}, "P-521": {"x", "y"}},
	"OKP": {"Ed25519": {"x"}},
}

// importKey has jwx parse the public key of j (jwk.ParseKey, then
// jwk.Export) from kty, crv and the key's own members only, each first
// checked to be strict base64url (domain.DecodeBase64URL: jwx decodes
// padded and standard base64 as well). jwx refuses a point not on its
// curve, coordinates or an Ed25519 key of the wrong size, an RSA modulus
// under 2048 bits and an even or small exponent. What else the JWK holds
// (kid, alg, use, x5c...) is ours to judge, and jwx never sees it.
func importKey(j rawJWK) (crypto.PublicKey, error) {
	curves, ok := keyMaterial[j.Kty]
	if !ok {
		return nil, fmt.Errorf("key type %q is not accepted", j.Kty)
	}
	crv := j.Crv
	if j.Kty == "RSA" {
		crv = ""
	}
	names, ok := curves[crv]
	if !ok {
		return nil, fmt.Errorf("curve %q is not accepted", j.Crv)
	}
	members := map[string]string{"kty": j.Kty}
	if crv != "" {
		members["crv"] = crv
	}
	values := map[string]string{"n": j.N, "e": j.E, "x": j.X, "y": j.Y}
	for _, name := range names {
		v := values[name]
		if v == "" {
			return nil, fmt.Errorf("member %q is missing", name)
		}
		if _, err := domain.DecodeBase64URL(v); err != nil {
			return nil, fmt.Errorf("member %q %w", name, err)
		}
		members[name] = v
	}
	raw, err := json.Marshal(members)
	if err != nil {
		return nil, err
	}
	k, err := jwxjwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	var pub any
	if err := jwxjwk.Export(k, &pub); err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return pub, nil
	}
	return nil, fmt.Errorf("key of type %T is not accepted", pub)
}
