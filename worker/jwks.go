package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/repo/jwks"
	"github.com/tat-worker/attest/repo/jwks/jwksprom"
)

// keySource is the worker's handlers.KeySource: a jwks.Cache whose fetched
// sets are shared through a JetStream key-value bucket (so the issuer sees
// about one fetch per interval for the fleet), and whose changes and
// failures become events.
type keySource struct {
	cache    *jwks.Cache
	wait     time.Duration
	pub      handlers.Publisher
	log      zerolog.Logger
	profiles func(url string) []string
	tracking sync.WaitGroup
}

func newKeySource(ctx context.Context, cfg Config, js jetstream.JetStream, pub handlers.Publisher, reg prometheus.Registerer, now func() time.Time, log zerolog.Logger,
	profiles func(url string) []string, sig signer, refused *prometheus.CounterVec) (*keySource, error) {
	maxValue := int32(min(cfg.JWKSMaxBytes*2, 1<<20))
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.streamName("JWKS"), Description: "JWK sets fetched by the fleet", History: 1, Replicas: cfg.Replicas,
		MaxValueSize: maxValue,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks bucket: %w", err)
	}
	ks := &keySource{wait: cfg.JWKSWait, pub: pub, log: log, profiles: profiles}
	client := jwks.NewHTTPClient(jwks.ClientOptions{AllowLocal: cfg.JWKSAllowLocal, Timeout: cfg.JWKSTimeout, MaxBody: cfg.JWKSMaxBytes})
	m := jwksprom.NewMetrics(reg)
	ks.cache = jwks.NewCache(jwks.Config{
		Fetcher:         &jwks.Fetcher{Client: client, MaxBody: cfg.JWKSMaxBytes},
		Now:             now,
		RefreshInterval: cfg.JWKSRefresh,
		MinInterval:     cfg.JWKSMinInterval,
		FetchTimeout:    cfg.JWKSTimeout,
		Shared:          &kvShared{kv: kv, bucket: cfg.streamName("JWKS"), sig: sig, refused: refused, maxBytes: int(maxValue)},
		OnChange:        ks.changed,
		OnFailure:       ks.failed,
		OnSharedError: func(url string, err error) {
			log.Warn().Err(err).Str("jwks_url", url).Msg("shared JWK set unusable; fetching")
		},
		Metrics: m,
	})
	m.Watch(ks.cache)
	return ks, nil
}

// Keys returns url's keys, waiting up to TAT_JWKS_WAIT for a first set.
func (k *keySource) Keys(ctx context.Context, url string) ([]domain.PublicKey, error) {
	keys, err := k.cache.WaitKeys(ctx, url, k.wait)
	if err != nil {
		return nil, domain.ErrJWKSUnavailable.Wrap(err, "no usable keys could be fetched for the profile's jwks_url")
	}
	return keys, nil
}

// RefreshUnknownKID refetches once for an unknown kid (rate-limited).
func (k *keySource) RefreshUnknownKID(ctx context.Context, url string) ([]domain.PublicKey, error) {
	return k.cache.RefreshUnknownKID(ctx, url)
}

// Ensure fetches url now, waiting at most TAT_JWKS_WAIT.
func (k *keySource) Ensure(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, k.wait)
	defer cancel()
	return k.cache.Ensure(ctx, url)
}

// track registers a URL found at start and fetches it in the background;
// run waits for these fetches before it returns.
func (k *keySource) track(ctx context.Context, url string) {
	k.tracking.Add(1)
	go func() {
		defer k.tracking.Done()
		_ = k.cache.Ensure(ctx, url)
	}()
}

// run keeps the refresh schedule until ctx ends.
func (k *keySource) run(ctx context.Context) {
	k.cache.Run(ctx)
	k.tracking.Wait()
}

// JWKSEventData is the data of tat.jwks.refreshed and refresh_failed.
type JWKSEventData struct {
	ProfileID    string   `json:"profile_id"`
	JWKSURL      string   `json:"jwks_url"`
	AddedKIDs    []string `json:"added_kids,omitempty"`
	RemovedKIDs  []string `json:"removed_kids,omitempty"`
	ErrorMessage string   `json:"error_message,omitempty"`
}

// changed publishes tat.jwks.refreshed for each profile naming url. The
// event id is fixed by the set (url, fetch time, kids), so workers that
// adopt the same shared set publish it once within the dedup window.
func (k *keySource) changed(url string, added, removed []string) {
	st, _ := k.cache.Status(url)
	id := domain.EventID("jwks", url+"|"+st.FetchedAt.UTC().Format(time.RFC3339Nano)+"|"+strings.Join(st.KIDs, ","))
	k.log.Info().Str("jwks_url", url).Strs("added", added).Strs("removed", removed).Msg("jwks changed")
	for _, pid := range k.profiles(url) {
		k.publish(domain.EventID(id, pid), domain.EventJWKSRefreshed, JWKSEventData{ProfileID: pid, JWKSURL: url, AddedKIDs: added, RemovedKIDs: removed})
	}
}

func (k *keySource) failed(url string, err error) {
	k.log.Warn().Err(err).Str("jwks_url", url).Msg("jwks fetch failed; last good keys stay in use")
	for _, pid := range k.profiles(url) {
		k.publish("evt-"+domain.NewUUID(), domain.EventJWKSRefreshFailed, JWKSEventData{ProfileID: pid, JWKSURL: url, ErrorMessage: err.Error()})
	}
}

func (k *keySource) publish(id, typ string, data JWKSEventData) {
	e, err := domain.NewEvent(id, typ, data.ProfileID, time.Now(), data)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.pub.PublishEvent(ctx, e); err != nil {
		k.log.Warn().Err(err).Str("event", typ).Msg("jwks event not published")
	}
}

// kvShared is a jwks.SharedStore on a JetStream key-value bucket. Every
// worker trusts the keys it reads there, so each value is an envelope
// signed by the worker that wrote it (values have no headers): the entry's
// exact bytes, signed with the bucket and the key, so that a set cannot be
// moved to another URL. An entry that is unsigned (written by an earlier
// version, or by anyone but a worker), wrongly signed or malformed is
// refused: the cache fetches the set from the issuer and writes a signed
// entry over it.
type kvShared struct {
	kv       jetstream.KeyValue
	bucket   string
	sig      signer
	refused  *prometheus.CounterVec
	maxBytes int
}

// kvEnvelope is a bucket value: the entry and its signature.
type kvEnvelope struct {
	Entry json.RawMessage `json:"entry"`
	Sig   string          `json:"sig"`
}

type kvEntry struct {
	Raw       []byte        `json:"raw"`
	FetchedAt time.Time     `json:"fetched_at"`
	MaxAge    time.Duration `json:"max_age"`
}

func kvKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:])
}

func (s *kvShared) Get(ctx context.Context, url string) (jwks.SharedEntry, bool, error) {
	key := kvKey(url)
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return jwks.SharedEntry{}, false, nil
	}
	if err != nil {
		return jwks.SharedEntry{}, false, err
	}
	v, reason, err := s.open(key, e.Value())
	if reason != "" {
		s.refused.WithLabelValues(reason).Inc()
		return jwks.SharedEntry{}, false, fmt.Errorf("shared entry refused (%s): %w", reason, err)
	}
	return jwks.SharedEntry{Raw: v.Raw, FetchedAt: v.FetchedAt, MaxAge: v.MaxAge}, true, nil
}

// open checks and decodes a bucket value; reason says why it is refused.
func (s *kvShared) open(key string, value []byte) (kvEntry, string, error) {
	var env kvEnvelope
	var v kvEntry
	if err := domain.DecodeStrictBus(value, &env, s.maxBytes); err != nil {
		if domain.DecodeStrictBus(value, &v, s.maxBytes) == nil {
			return kvEntry{}, "unsigned", errors.New("an entry without a signature")
		}
		return kvEntry{}, "malformed", err
	}
	switch {
	case env.Sig == "":
		return kvEntry{}, "unsigned", errors.New("an entry without a signature")
	case !s.sig.verify(env.Sig, []byte(s.bucket), []byte(key), env.Entry):
		return kvEntry{}, "bad_signature", errors.New("not signed by a worker of this fleet")
	}
	if err := domain.DecodeStrictBus(env.Entry, &v, s.maxBytes); err != nil {
		return kvEntry{}, "malformed", err
	}
	return v, "", nil
}

func (s *kvShared) Put(ctx context.Context, url string, e jwks.SharedEntry) error {
	key := kvKey(url)
	entry, err := json.Marshal(kvEntry{Raw: e.Raw, FetchedAt: e.FetchedAt, MaxAge: e.MaxAge})
	if err != nil {
		return err
	}
	b, err := json.Marshal(kvEnvelope{Entry: entry, Sig: s.sig.sign([]byte(s.bucket), []byte(key), entry)})
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, key, b)
	return err
}
