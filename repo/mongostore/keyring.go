package mongostore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tat-worker/attest/domain"
)

// StoredSecret is one secret opened with the master key.
type StoredSecret = domain.StoredSecret

// InsertSecret stores fresh sealed under name (AES-256-GCM under master,
// the name bound as additional data) unless a secret is stored there. It
// returns the secret stored under name and whether this call inserted it:
// the insert under the name decides between workers, so two workers never
// both store one.
func (s *Store) InsertSecret(ctx context.Context, name string, master, fresh []byte) ([]byte, bool, error) {
	gcm, err := newGCM(master)
	if err != nil {
		return nil, false, err
	}
	c, err := s.coll(ctx, collSecrets)
	if err != nil {
		return nil, false, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, false, err
	}
	m := secretModel{ID: name, Nonce: nonce, Sealed: gcm.Seal(nil, nonce, fresh, []byte(name)), CreatedAt: time.Now().UTC()}
	if err := insert(ctx, c, m); err == nil {
		return fresh, true, nil
	} else if !errors.Is(err, errConflict) {
		return nil, false, fmt.Errorf("store secret %s: %w", name, err)
	}
	ok, err := findByID(ctx, c, name, &m)
	if err != nil || !ok {
		return nil, false, fmt.Errorf("read secret %s: %v", name, err)
	}
	plain, err := gcm.Open(nil, m.Nonce, m.Sealed, []byte(name))
	if err != nil {
		return nil, false, ErrWrongMasterKey
	}
	return plain, false, nil
}

// LoadSecrets returns every secret whose name starts with prefix, opened
// with master. The secrets collection is small (the fleet's keys): it is
// read whole, which is one scan on FerretDB as on MongoDB.
func (s *Store) LoadSecrets(ctx context.Context, prefix string, master []byte) ([]StoredSecret, error) {
	gcm, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	c, err := s.coll(ctx, collSecrets)
	if err != nil {
		return nil, err
	}
	cur, err := c.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	defer cur.Close(ctx)
	var out []StoredSecret
	for cur.Next(ctx) {
		var m secretModel
		if err := cur.Decode(&m); err != nil {
			return nil, fmt.Errorf("decode secret: %w", err)
		}
		if !strings.HasPrefix(m.ID, prefix) {
			continue
		}
		plain, err := gcm.Open(nil, m.Nonce, m.Sealed, []byte(m.ID))
		if err != nil {
			return nil, ErrWrongMasterKey
		}
		out = append(out, StoredSecret{Name: m.ID, Plain: plain, CreatedAt: m.CreatedAt})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	return out, nil
}
