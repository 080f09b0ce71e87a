package main

import (
	"encoding/json"
	"fmt"
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
	tok, err := domain.SignJWT(key, *alg, *kid, claims)
	if err != nil {
		return err
	}
	if c.g.json {
		return printJSON(c.stdout, map[string]any{"token": tok, "alg": *alg, "claims": claims})
	}
	_, err = fmt.Fprintln(c.stdout, tok)
	return err
}
