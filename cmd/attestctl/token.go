package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tat-worker/attest/domain"
)

// claimFlags collects repeated -claim values: name=value sets a string,
// name:=JSON sets any JSON value.
type claimFlags []claimFlag

type claimFlag struct {
	name  string
	value any
}

func (f *claimFlags) String() string { return "" }

func (f *claimFlags) Set(s string) error {
	name, raw, ok := strings.Cut(s, "=")
	if !ok || name == "" || name == ":" {
		return fmt.Errorf("want name=value or name:=JSON, got %q", s)
	}
	if n, isJSON := strings.CutSuffix(name, ":"); isJSON {
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return fmt.Errorf("claim %s: the value after := is not JSON: %v", n, err)
		}
		*f = append(*f, claimFlag{name: n, value: v})
		return nil
	}
	*f = append(*f, claimFlag{name: name, value: raw})
	return nil
}

// cmdTokenMint prints a compact JWS, as a third-party issuer would make
// one, for trying a profile out.
func cmdTokenMint(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	keyFile := fs.String("key", "", "private key `FILE` (PEM: PKCS#8, SEC 1 or PKCS#1) (required)")
	iss := fs.String("iss", "", "issuer claim, the profile's issuer (required)")
	aud := fs.String("aud", "", "audience claim, the profile's audience (required)")
	email := fs.String("email", "", "email claim, also the sub claim (required)")
	jti := fs.String("jti", "", "token id claim (default: a random UUID)")
	ttl := fs.Duration("ttl", 5*time.Minute, "lifetime: exp = now + ttl (negative gives an expired token, for testing)")
	kid := fs.String("kid", "", "kid header (default: none; keygen prints the key's RFC 7638 thumbprint, the kid a profile's PEM key answers to)")
	alg := fs.String("alg", "", "JWS algorithm (default: ES256/ES384/ES512 by curve, RS256 for RSA, EdDSA for Ed25519; PS256.. and RS384.. also work for RSA)")
	roles := fs.String("roles", "", "comma-separated role ids, sent as the array claim \"roles\"")
	var extra claimFlags
	fs.Var(&extra, "claim", "extra claim, repeatable: `name=value` (a string) or name:=JSON (any JSON); applied last, so it can also override the claims above")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "key", "iss", "aud", "email"); err != nil {
		return err
	}
	key, err := loadPrivateKey(*keyFile)
	if err != nil {
		return err
	}
	if *alg == "" {
		*alg = defaultAlg(key.Public())
	} else if !slices.Contains(domain.AlgsForKey(key.Public()), *alg) {
		return usageErrorf("-alg %s does not fit this key; it admits %s", *alg, strings.Join(domain.AlgsForKey(key.Public()), ", "))
	}
	if *jti == "" {
		*jti = uuid.NewString()
	}
	now := time.Now().UTC().Truncate(time.Second)
	claims := map[string]any{
		"iss": *iss, "aud": *aud, "sub": *email, "email": *email, "jti": *jti,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(*ttl).Unix(),
	}
	if *roles != "" {
		list := []string{}
		for r := range strings.SplitSeq(*roles, ",") {
			if r = strings.TrimSpace(r); r != "" {
				list = append(list, r)
			}
		}
		claims["roles"] = list
	}
	for _, cl := range extra {
		claims[cl.name] = cl.value
	}
	tok, err := mintToken(key, *alg, *kid, claims)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, tok)
	return err
}

// mintToken returns the compact JWS of claims signed with key under alg,
// with typ JWT and, when not empty, kid in the header.
func mintToken(key crypto.Signer, alg, kid string, claims map[string]any) (string, error) {
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(pb)
	sig, err := signJWS(key, alg, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// signJWS signs the JWS signing input as RFC 7518 says for alg: ECDSA as
// raw r||s of the curve's size, RSA PKCS #1 v1.5 or PSS (salt length equal
// to the hash), Ed25519 over the input itself.
func signJWS(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	if alg == "EdDSA" {
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("EdDSA needs an Ed25519 key, not %T", key)
		}
		return ed25519.Sign(k, input), nil
	}
	if len(alg) != 5 {
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	hh := h.New()
	hh.Write(input)
	digest := hh.Sum(nil)
	switch alg[:2] {
	case "ES":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an EC key, not %T", alg, key)
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		return append(fixed(r, size), fixed(s, size)...), nil
	case "RS":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an RSA key, not %T", alg, key)
		}
		return rsa.SignPKCS1v15(rand.Reader, k, h, digest)
	case "PS":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an RSA key, not %T", alg, key)
		}
		return rsa.SignPSS(rand.Reader, k, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return nil, fmt.Errorf("unsupported algorithm %q", alg)
}

// fixed returns n as a big-endian number of exactly size bytes.
func fixed(n *big.Int, size int) []byte {
	b := make([]byte, size)
	n.FillBytes(b)
	return b
}
