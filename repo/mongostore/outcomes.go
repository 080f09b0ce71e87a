package mongostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

var errConflict = domain.ErrConflict

// outcomeModel is the stored form of a domain.Outcome. Reply and event are
// kept as the JSON they are sent as; neither holds a bearer secret.
type outcomeModel struct {
	ID          string `bson:"_id"`
	Fingerprint string `bson:"fingerprint,omitempty"`
	StatusCode  int    `bson:"status_code"`
	// ErrorType: absent in outcomes stored before it existed; domain()
	// then reads it from the reply.
	ErrorType string `bson:"error_type,omitempty"`
	Reply     string `bson:"reply"`
	SessionID string `bson:"session_id,omitempty"`
	// SecretsUntil: zero (absent in outcomes stored before it existed)
	// means a repeat gets no secrets.
	SecretsUntil time.Time `bson:"secrets_until"`
	Event        string    `bson:"event"`
	Published    bool      `bson:"published"`
	CreatedAt    time.Time `bson:"created_at"`
}

func (m outcomeModel) domain() (domain.Outcome, error) {
	o := domain.Outcome{Key: m.ID, Fingerprint: m.Fingerprint, StatusCode: m.StatusCode, ErrorType: m.ErrorType, Reply: json.RawMessage(m.Reply),
		SessionID: m.SessionID, SecretsUntil: m.SecretsUntil, Published: m.Published, CreatedAt: m.CreatedAt}
	if o.ErrorType == "" && m.StatusCode >= 400 && m.Reply != "" {
		// Stored before error_type had a field of its own: read it from
		// the reply, once, here, so callers never decode.
		var r struct {
			ErrorType string `json:"error_type"`
		}
		_ = json.Unmarshal([]byte(m.Reply), &r)
		o.ErrorType = r.ErrorType
	}
	if err := json.Unmarshal([]byte(m.Event), &o.Event); err != nil {
		return o, fmt.Errorf("decode stored event of %s: %w", m.ID, err)
	}
	return o, nil
}

// Record inserts o under its key; when one is there, it returns that one.
func (s *Store) Record(ctx context.Context, o domain.Outcome) (domain.Outcome, bool, error) {
	if strings.HasPrefix(o.Key, markerPrefix) {
		return o, false, fmt.Errorf("outcome key %q is a publication marker's", o.Key)
	}
	ev, err := o.Event.Encode()
	if err != nil {
		return o, false, err
	}
	m := outcomeModel{ID: o.Key, Fingerprint: o.Fingerprint, StatusCode: o.StatusCode, ErrorType: o.ErrorType, Reply: string(o.Reply), SessionID: o.SessionID,
		SecretsUntil: o.SecretsUntil.UTC(), Event: string(ev), Published: o.Published, CreatedAt: o.CreatedAt.UTC()}
	err = s.insert(ctx, collOutcomes, m)
	if errors.Is(err, errConflict) {
		stored, ok, err := s.Get(ctx, o.Key)
		if err != nil {
			return o, false, err
		}
		if !ok {
			return o, false, fmt.Errorf("outcome %s conflicted but is gone", o.Key)
		}
		return stored, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("insert outcome: %w", err)
	}
	return o, true, nil
}

// Get returns the outcome stored under key, with Published set when its
// publication marker exists.
func (s *Store) Get(ctx context.Context, key string) (domain.Outcome, bool, error) {
	c, err := s.coll(ctx, collOutcomes)
	if err != nil {
		return domain.Outcome{}, false, err
	}
	var m outcomeModel
	ok, err := findByID(ctx, c, key, &m)
	if err != nil || !ok {
		return domain.Outcome{}, false, err
	}
	o, err := m.domain()
	if err != nil {
		return o, false, err
	}
	if !o.Published {
		var mark publishedModel
		if o.Published, err = findByID(ctx, c, markerID(key), &mark); err != nil {
			return o, false, err
		}
	}
	if !o.Published {
		// Markers written before they moved into outcomes, kept until
		// TAT_OUTCOME_RETENTION sweeps them.
		legacy, err := s.coll(ctx, collPublished)
		if err != nil {
			return o, false, err
		}
		var mark publishedModel
		if o.Published, err = findByID(ctx, legacy, key, &mark); err != nil {
			return o, false, err
		}
	}
	return o, true, nil
}

type publishedModel struct {
	ID        string    `bson:"_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// markerPrefix starts the _id of a publication marker in the outcomes
// collection. An outcome's key starts with its kind and a colon
// ("attest:", "attest-jit:", "profile.repeated:"), never with this.
const markerPrefix = "published/"

// markerID is the _id of the publication marker of the outcome under key.
func markerID(key string) string { return markerPrefix + key }

// MarkPublished notes that the outcome's event is in the events stream. It
// is an insert of a marker, not an update of the outcome: on FerretDB an
// update of one document can lose to a concurrent one, and this runs for
// every command. The marker goes into the outcomes collection itself, with
// its own _id, so that the markers and the outcomes of the commands in
// flight share their grouped inserts: one insertMany (on FerretDB one SQLite
// transaction) for both instead of one each. Markers stored before that
// are in outcomes_published, which Get still reads.
//
// The marker's created_at is its outcome's, so that the sweep deletes the
// two together: a marker that outlived its outcome would make a new outcome
// recorded under the same key (a request id used again after
// TAT_OUTCOME_RETENTION) look published before its event is.
func (s *Store) MarkPublished(ctx context.Context, o domain.Outcome) error {
	created := o.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	err := s.insert(ctx, collOutcomes, publishedModel{ID: markerID(o.Key), CreatedAt: created.UTC()})
	if errors.Is(err, errConflict) {
		return nil
	}
	return err
}
