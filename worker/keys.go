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
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tat-worker/attest/domain"
)

// The fleet's session keys, stored sealed under the master key (see
// mongostore.InsertSecret): the session-token key and key 1 in the record
// "session-keys-v1" (made by the first worker ever to start, as before
// rotation existed), and each later signing key in a record
// "session-key-<n>" inserted once by the rotation that made it. Nothing is
// ever updated: a key's times are fixed in its record (domain.KeyRecord),
// and its state follows from them and the clock.
const (
	legacyKeysName = "session-keys-v1"
	keyNamePrefix  = "session-key-"
	// keySecretsPrefix selects both kinds of record.
	keySecretsPrefix = "session-key"
)

// sessionKeys is the record session-keys-v1: the session-token key (which
// never rotates) and key 1.
type sessionKeys struct {
	TokenKey   []byte `json:"token_key"`
	SigningKey []byte `json:"signing_key"` // PKCS#8 DER
	KID        string `json:"kid"`
}

// keyRecord is the record session-key-<n>, n >= 2.
type keyRecord struct {
	Number         int       `json:"number"`
	KID            string    `json:"kid"`
	SigningKey     []byte    `json:"signing_key"` // PKCS#8 DER
	PublishAt      time.Time `json:"publish_at"`
	SignFrom       time.Time `json:"sign_from"`
	RetirePrevious time.Time `json:"retire_previous_at"`
	ChangeID       string    `json:"change_id,omitempty"`
	Trigger        string    `json:"trigger,omitempty"`
}

func keyName(n int) string { return keyNamePrefix + strconv.Itoa(n) }

// newSigningKey makes a P-256 key, its PKCS#8 DER and its kid.
func newSigningKey() (*ecdsa.PrivateKey, []byte, string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, "", err
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	sum := sha256.Sum256(pubDER)
	return priv, der, "tat-" + base64.RawURLEncoding.EncodeToString(sum[:12]), nil
}

func parseSigningKey(der []byte) (*ecdsa.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("stored signing key is not a P-256 key")
	}
	return ec, nil
}

// keyring is the fleet's session-signing keys as this worker holds them:
// every record read from the store, and the private keys of those not
// retired. It is the domain.KeyRing of the worker's issuer, so a key
// loaded is published and verifies at once, and each key signs in its
// window by the clock.
type keyring struct {
	store  SecretStore
	master []byte
	skew   time.Duration
	now    func() time.Time

	// mu serializes loads and rotations of this worker; readers use state.
	mu       sync.Mutex
	tokenKey []byte
	privs    map[int]*ecdsa.PrivateKey // parsed keys by number
	state    atomic.Pointer[ringState]
}

type ringState struct {
	recs []domain.KeyRecord  // every record, in number order
	keys []domain.SigningKey // the keys not retired when loaded, in number order
}

func newKeyring(store SecretStore, master []byte, cfg Config, now func() time.Time) *keyring {
	r := &keyring{store: store, master: master, skew: cfg.ClockSkew, now: now, privs: map[int]*ecdsa.PrivateKey{}}
	r.state.Store(&ringState{})
	return r
}

// SessionKeys implements domain.KeyRing.
func (r *keyring) SessionKeys() []domain.SigningKey { return r.state.Load().keys }

// KeyInfos implements handlers.KeyLister.
func (r *keyring) KeyInfos(now time.Time) []domain.KeyInfo {
	return domain.KeyInfos(r.state.Load().recs, now)
}

// records returns the records known, in number order.
func (r *keyring) records() []domain.KeyRecord { return r.state.Load().recs }

// issuer loads the keys (making the fleet's first ones when there are
// none) and returns the issuer that signs with them.
func (r *keyring) issuer(ctx context.Context, cfg Config) (*domain.Issuer, error) {
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	return &domain.Issuer{TokenKey: r.tokenKey, Ring: r, Iss: cfg.SessionIssuer, Aud: cfg.SessionAudience}, nil
}

// load reads every key record from the store.
func (r *keyring) load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked(ctx)
}

func (r *keyring) loadLocked(ctx context.Context) error {
	if r.tokenKey == nil {
		if err := r.createFirst(ctx); err != nil {
			return err
		}
	}
	stored, err := r.store.LoadSecrets(ctx, keySecretsPrefix, r.master)
	if err != nil {
		return err
	}
	var recs []domain.KeyRecord
	ders := map[int][]byte{}
	for _, s := range stored {
		rec, der, ok, err := decodeKeyRecord(s)
		if err != nil {
			return fmt.Errorf("key record %s: %w", s.Name, err)
		}
		if ok {
			recs = append(recs, rec)
			ders[rec.Number] = der
		}
	}
	if len(recs) == 0 || slices.IndexFunc(recs, func(k domain.KeyRecord) bool { return k.Number == 1 }) < 0 {
		return errors.New("key record session-keys-v1 is missing")
	}
	slices.SortFunc(recs, func(a, b domain.KeyRecord) int { return a.Number - b.Number })
	times := domain.KeyTimesOf(recs)
	now := r.now()
	keys := make([]domain.SigningKey, 0, 3)
	for i, rec := range recs {
		if times[i].StateAt(now) == domain.KeyRetired {
			delete(r.privs, rec.Number) // never needed again
			continue
		}
		priv := r.privs[rec.Number]
		if priv == nil {
			if priv, err = parseSigningKey(ders[rec.Number]); err != nil {
				return fmt.Errorf("key %d: %w", rec.Number, err)
			}
			r.privs[rec.Number] = priv
		}
		keys = append(keys, domain.SigningKey{KID: rec.KID, Private: priv, Number: rec.Number, KeyTimes: times[i]})
	}
	r.state.Store(&ringState{recs: recs, keys: keys})
	return nil
}

// createFirst loads the record session-keys-v1, storing a fresh one when
// the fleet has none (the insert under the name decides between workers
// starting at once), and keeps its session-token key.
func (r *keyring) createFirst(ctx context.Context) error {
	_, der, kid, err := newSigningKey()
	if err != nil {
		return err
	}
	fresh := sessionKeys{TokenKey: make([]byte, 32), SigningKey: der, KID: kid}
	if _, err := rand.Read(fresh.TokenKey); err != nil {
		return err
	}
	plain, _ := json.Marshal(fresh)
	got, err := r.store.LoadOrCreateSecret(ctx, legacyKeysName, r.master, plain)
	if err != nil {
		return err
	}
	var k sessionKeys
	if err := json.Unmarshal(got, &k); err != nil {
		return fmt.Errorf("decode session keys: %w", err)
	}
	if len(k.TokenKey) != 32 {
		return errors.New("stored session keys are malformed")
	}
	r.tokenKey = k.TokenKey
	return nil
}

// decodeKeyRecord reads one stored key record: the public record and the
// private key's DER. ok is false for a secret that is not a key record.
func decodeKeyRecord(s domain.StoredSecret) (domain.KeyRecord, []byte, bool, error) {
	if s.Name == legacyKeysName {
		var k sessionKeys
		if err := json.Unmarshal(s.Plain, &k); err != nil {
			return domain.KeyRecord{}, nil, false, err
		}
		return domain.KeyRecord{Number: 1, KID: k.KID, CreatedAt: s.CreatedAt}, k.SigningKey, true, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s.Name, keyNamePrefix))
	if !strings.HasPrefix(s.Name, keyNamePrefix) || err != nil || n < 2 || keyName(n) != s.Name {
		return domain.KeyRecord{}, nil, false, nil
	}
	var k keyRecord
	if err := json.Unmarshal(s.Plain, &k); err != nil {
		return domain.KeyRecord{}, nil, false, err
	}
	if k.Number != n || k.KID == "" || k.SignFrom.IsZero() || k.RetirePrevious.Before(k.SignFrom) {
		return domain.KeyRecord{}, nil, false, errors.New("malformed key record")
	}
	return domain.KeyRecord{Number: n, KID: k.KID, PublishAt: k.PublishAt, SignFrom: k.SignFrom,
		RetirePrevious: k.RetirePrevious, ChangeID: k.ChangeID, CreatedAt: s.CreatedAt}, k.SigningKey, true, nil
}
