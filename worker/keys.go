package worker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
)

// sessionKeys is the fleet's shared secret material, stored sealed.
type sessionKeys struct {
	TokenKey   []byte `json:"token_key"`
	SigningKey []byte `json:"signing_key"` // PKCS#8 DER
	KID        string `json:"kid"`
}

// loadIssuer returns the issuer built from the fleet's session keys: the
// first worker to start stores fresh keys (sealed with the master key, an
// insert under a fixed name), every other worker and every restart loads
// them, so session tokens and JWTs survive restarts and work fleet-wide.
func loadIssuer(ctx context.Context, store *mongostore.Store, master []byte, cfg Config) (*domain.Issuer, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	sum := sha256.Sum256(pubDER)
	fresh := sessionKeys{TokenKey: make([]byte, 32), SigningKey: der, KID: "tat-" + base64.RawURLEncoding.EncodeToString(sum[:12])}
	if _, err := rand.Read(fresh.TokenKey); err != nil {
		return nil, err
	}
	plain, _ := json.Marshal(fresh)
	got, err := store.LoadOrCreateSecret(ctx, "session-keys-v1", master, plain)
	if err != nil {
		return nil, err
	}
	var k sessionKeys
	if err := json.Unmarshal(got, &k); err != nil {
		return nil, fmt.Errorf("decode session keys: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(k.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || len(k.TokenKey) != 32 {
		return nil, fmt.Errorf("stored session keys are malformed")
	}
	return &domain.Issuer{TokenKey: k.TokenKey, Keys: []domain.SigningKey{{KID: k.KID, Private: ec}},
		Iss: cfg.SessionIssuer, Aud: cfg.SessionAudience}, nil
}
