package mongostore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tat-worker/attest/domain"
)

type secretModel struct {
	ID        string    `bson:"_id"`
	Nonce     []byte    `bson:"nonce"`
	Sealed    []byte    `bson:"sealed"`
	CreatedAt time.Time `bson:"created_at"`
}

// ErrWrongMasterKey means a stored secret could not be opened: the workers
// do not share one TAT_MASTER_KEY.
var ErrWrongMasterKey = domain.ErrWrongMasterKey

// LoadOrCreateSecret returns the secret stored under name, sealed with
// AES-256-GCM under master. When there is none it stores fresh; the insert
// under the name decides between workers starting at once, and every
// worker returns the one stored.
func (s *Store) LoadOrCreateSecret(ctx context.Context, name string, master, fresh []byte) ([]byte, error) {
	gcm, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	c, err := s.coll(ctx, collSecrets)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	m := secretModel{ID: name, Nonce: nonce, Sealed: gcm.Seal(nil, nonce, fresh, []byte(name)), CreatedAt: time.Now().UTC()}
	if err := insert(ctx, c, m); err == nil {
		return fresh, nil
	} else if !errors.Is(err, errConflict) {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	ok, err := findByID(ctx, c, name, &m)
	if err != nil || !ok {
		return nil, fmt.Errorf("read secret %s: %v", name, err)
	}
	plain, err := gcm.Open(nil, m.Nonce, m.Sealed, []byte(name))
	if err != nil {
		return nil, ErrWrongMasterKey
	}
	return plain, nil
}

func newGCM(master []byte) (cipher.AEAD, error) {
	if len(master) != 32 {
		return nil, errors.New("master key must be 32 bytes")
	}
	b, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
