package workertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"
)

// Issuer is a third party that signs trusted tokens with an ES256 key.
type Issuer struct {
	Key *ecdsa.PrivateKey
	KID string
	Iss string
	Aud string
}

// NewIssuer makes a fresh P-256 key.
func NewIssuer(t testing.TB, iss, aud string) *Issuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Key: k, Iss: iss, Aud: aud}
}

// PublicPEM returns the public key as a PKIX PEM.
func (i *Issuer) PublicPEM() string {
	der, _ := x509.MarshalPKIXPublicKey(&i.Key.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// JWK returns the public key as a JWK with the issuer's kid.
func (i *Issuer) JWK() map[string]any {
	raw, _ := i.Key.PublicKey.Bytes()
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": i.KID, "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}
}

// Token signs claims: iss, aud, iat, nbf and exp (10 minutes) are filled in
// unless given; a nil value removes a claim.
func (i *Issuer) Token(claims map[string]any) string {
	now := time.Now().Unix()
	c := map[string]any{"iss": i.Iss, "aud": i.Aud, "iat": now, "nbf": now, "exp": now + 600}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	hdr := map[string]any{"alg": "ES256", "typ": "JWT"}
	if i.KID != "" {
		hdr["kid"] = i.KID
	}
	hb, _ := json.Marshal(hdr)
	pb, _ := json.Marshal(c)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(pb)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, i.Key, sum[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
