package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tat-worker/attest/domain"
)

// cmdKeygen writes a development key pair: the private key as PKCS#8 PEM
// with mode 0600, the public key as PKIX PEM, ready for a profile's
// public_keys. It refuses to overwrite either file unless -force.
func cmdKeygen(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	out := fs.String("out", "", "base `NAME` of the files: NAME.key.pem and NAME.pub.pem (required)")
	typ := fs.String("type", "ec", "key `TYPE`: ec, rsa or ed25519")
	curve := fs.String("curve", "P-256", "EC `CURVE`: P-256, P-384 or P-521")
	bits := fs.Int("bits", 2048, fmt.Sprintf("RSA modulus size, %d to %d", domain.MinRSABits, domain.MaxRSABits))
	force := fs.Bool("force", false, "overwrite existing files")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageErrorf("-out is required")
	}
	key, err := generateKey(*typ, *curve, *bits)
	if err != nil {
		return err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("encode public key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	keyFile, pubFile := *out+".key.pem", *out+".pub.pem"
	if err := writeNew(keyFile, privPEM, 0o600, *force); err != nil {
		return err
	}
	if err := writeNew(pubFile, pubPEM, 0o644, *force); err != nil {
		_ = os.Remove(keyFile) // no private key without its public half
		return err
	}
	kid, err := domain.JWKThumbprint(key.Public())
	if err != nil {
		return fmt.Errorf("thumbprint: %w", err)
	}
	if c.g.json {
		return printJSON(c.stdout, map[string]any{
			"private_key_file": keyFile,
			"public_key_file":  pubFile,
			"alg":              defaultAlg(key.Public()),
			"kid":              kid,
			"public_key_pem":   string(pubPEM),
		})
	}
	f := newFields(c.stdout)
	f.add("private_key_file", keyFile+" (mode 0600: it signs tokens, keep it to yourself)")
	f.add("public_key_file", pubFile+" (for a profile: -pem "+pubFile+")")
	f.add("alg", defaultAlg(key.Public()))
	f.add("kid", kid)
	return f.flush()
}

// generateKey makes a key of the named type.
func generateKey(typ, curve string, bits int) (crypto.Signer, error) {
	switch typ {
	case "ec", "ecdsa":
		var c elliptic.Curve
		switch curve {
		case "P-256", "p256", "P256":
			c = elliptic.P256()
		case "P-384", "p384", "P384":
			c = elliptic.P384()
		case "P-521", "p521", "P521":
			c = elliptic.P521()
		default:
			return nil, usageErrorf("-curve %q: use P-256, P-384 or P-521", curve)
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	case "rsa":
		if bits < domain.MinRSABits || bits > domain.MaxRSABits {
			return nil, usageErrorf("-bits %d: a profile accepts RSA keys of %d to %d bits", bits, domain.MinRSABits, domain.MaxRSABits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case "ed25519":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, usageErrorf("-type %q: use ec, rsa or ed25519", typ)
}

// writeNew writes data to a new file with mode perm; an existing file is an
// error unless force, in which case it is replaced (and gets perm).
func writeNew(name string, data []byte, perm os.FileMode, force bool) error {
	if force {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; use -force to overwrite it", name)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// loadPrivateKey reads a PEM private key: PKCS#8 ("PRIVATE KEY", what
// keygen writes), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
func loadPrivateKey(name string) (crypto.Signer, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", name)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%s is encrypted; decrypt it first (openssl pkcs8 -in %s -out plain.pem)", name, name)
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, fmt.Errorf("%s is a public key; -key needs the private key (NAME.key.pem)", name)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a private key", name, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key type %T cannot sign", name, key)
	}
	if defaultAlg(signer.Public()) == "" {
		return nil, fmt.Errorf("%s: the key admits no JWS algorithm a profile accepts (RSA of %d+ bits, EC P-256/384/521, Ed25519)", name, domain.MinRSABits)
	}
	return signer, nil
}

// defaultAlg is the JWS algorithm token mint uses for a key: ES256, ES384
// or ES512 by curve, RS256 for RSA, EdDSA for Ed25519; "" when the worker
// would accept none.
func defaultAlg(pub crypto.PublicKey) string {
	if len(domain.AlgsForKey(pub)) == 0 {
		return ""
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256"
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
	case ed25519.PublicKey:
		return "EdDSA"
	}
	return ""
}
