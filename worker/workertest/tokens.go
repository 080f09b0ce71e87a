package workertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tat-worker/attest/domain"
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

// JWK returns the public key as a JWK (exported by jwx) with the issuer's
// kid and use sig.
func (i *Issuer) JWK() map[string]any {
	k, err := jwk.Import(&i.Key.PublicKey)
	if err != nil {
		panic(err)
	}
	if i.KID != "" {
		_ = k.Set(jwk.KeyIDKey, i.KID)
	}
	_ = k.Set(jwk.KeyUsageKey, "sig")
	b, err := json.Marshal(k)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
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
	tok, err := domain.SignJWT(i.Key, "ES256", i.KID, c)
	if err != nil {
		panic(err)
	}
	return tok
}
