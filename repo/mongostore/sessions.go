package mongostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tat-worker/attest/domain"
)

// revisionModel is one revision of a session. Each change inserts the next
// revision under _id "<session id>#<revision>", so two writers of one
// revision cannot both succeed, on MongoDB or on FerretDB.
type revisionModel struct {
	ID        string    `bson:"_id"`
	SessionID string    `bson:"session_id"`
	Revision  int64     `bson:"revision"`
	RequestID string    `bson:"request_id"`
	Revoked   bool      `bson:"revoked"`
	ExpiresAt time.Time `bson:"expires_at"`
	Session   string    `bson:"session"`
}

func revisionID(sessionID string, rev int64) string {
	return fmt.Sprintf("%s#%012d", sessionID, rev)
}

func (m revisionModel) state() (domain.SessionState, error) {
	st := domain.SessionState{Revision: m.Revision, Revoked: m.Revoked}
	err := json.Unmarshal([]byte(m.Session), &st.Session)
	return st, err
}

// InsertRevision inserts st; on a conflict it returns the stored revision
// and the request that made it, with domain.ErrConflict.
func (s *Store) InsertRevision(ctx context.Context, st domain.SessionState, requestID string) (domain.SessionState, string, error) {
	body, err := json.Marshal(st.Session)
	if err != nil {
		return st, "", err
	}
	c, err := s.coll(ctx, collSessions)
	if err != nil {
		return st, "", err
	}
	id := revisionID(st.Session.SessionID, st.Revision)
	err = s.insert(ctx, collSessions, revisionModel{ID: id, SessionID: st.Session.SessionID, Revision: st.Revision,
		RequestID: requestID, Revoked: st.Revoked, ExpiresAt: st.Session.ExpiresAt.UTC(), Session: string(body)})
	if !errors.Is(err, errConflict) {
		return st, requestID, err
	}
	var m revisionModel
	ok, ferr := findByID(ctx, c, id, &m)
	if ferr != nil || !ok {
		return st, "", fmt.Errorf("read conflicting revision %s: %v", id, ferr)
	}
	stored, derr := m.state()
	if derr != nil {
		return st, "", derr
	}
	return stored, m.RequestID, errConflict
}

// RevisionBy returns the latest revision of sessionID that requestID
// stored, if any. Only a request given up after its deliveries reads it
// (off the hot path): it announces what an earlier delivery stored.
func (s *Store) RevisionBy(ctx context.Context, sessionID, requestID string) (domain.SessionState, bool, error) {
	c, err := s.coll(ctx, collSessions)
	if err != nil {
		return domain.SessionState{}, false, err
	}
	cur, err := c.Find(ctx, bson.M{"session_id": sessionID, "request_id": requestID})
	if err != nil {
		return domain.SessionState{}, false, fmt.Errorf("find revisions of %s: %w", sessionID, err)
	}
	defer cur.Close(ctx)
	var latest *revisionModel
	for cur.Next(ctx) {
		var m revisionModel
		if err := cur.Decode(&m); err != nil {
			return domain.SessionState{}, false, fmt.Errorf("decode session revision: %w", err)
		}
		if latest == nil || m.Revision > latest.Revision {
			latest = &m
		}
	}
	if err := cur.Err(); err != nil || latest == nil {
		return domain.SessionState{}, false, err
	}
	st, err := latest.state()
	return st, err == nil, err
}

// LoadSessions returns the latest revision of every session whose latest
// revision ends after since (one scan at start). The latest revision
// decides: an older one with a longer expiry never stands in for a session
// that was shortened or ended.
func (s *Store) LoadSessions(ctx context.Context, since time.Time) ([]domain.SessionState, error) {
	latest, err := s.latestRevisions(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	out := make([]domain.SessionState, 0, len(latest))
	for _, m := range latest {
		if !m.ExpiresAt.After(since) {
			continue
		}
		st, err := m.state()
		if err != nil {
			return nil, fmt.Errorf("decode session %s: %w", m.SessionID, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// EachSession calls f with every stored session revision, in no order (a
// session's older revisions too): the caller keeps the latest of each. One
// scan at start, holding one decoded revision at a time.
func (s *Store) EachSession(ctx context.Context, f func(domain.SessionState) error) error {
	c, err := s.coll(ctx, collSessions)
	if err != nil {
		return err
	}
	cur, err := c.Find(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var m revisionModel
		if err := cur.Decode(&m); err != nil {
			return fmt.Errorf("decode session revision: %w", err)
		}
		st, err := m.state()
		if err != nil {
			return fmt.Errorf("decode session %s: %w", m.SessionID, err)
		}
		if err := f(st); err != nil {
			return err
		}
	}
	return cur.Err()
}

func (s *Store) latestRevisions(ctx context.Context, filter bson.M) (map[string]revisionModel, error) {
	c, err := s.coll(ctx, collSessions)
	if err != nil {
		return nil, err
	}
	cur, err := c.Find(ctx, filter)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	latest := map[string]revisionModel{}
	for cur.Next(ctx) {
		var m revisionModel
		if err := cur.Decode(&m); err != nil {
			return nil, fmt.Errorf("decode session revision: %w", err)
		}
		if l, ok := latest[m.SessionID]; !ok || m.Revision > l.Revision {
			latest[m.SessionID] = m
		}
	}
	return latest, cur.Err()
}

// sweepSessions deletes every revision of the sessions whose latest
// revision ended before cutoff. Revisions are never deleted one by one:
// deleting a shortened latest revision would bring back an older, longer
// one.
func (s *Store) sweepSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	c, err := s.coll(ctx, collSessions)
	if err != nil {
		return 0, err
	}
	cur, err := c.Find(ctx, bson.M{"expires_at": bson.M{"$lt": cutoff}})
	if err != nil {
		return 0, err
	}
	var candidates []string
	seen := map[string]bool{}
	for cur.Next(ctx) {
		var m revisionModel
		if err := cur.Decode(&m); err == nil && !seen[m.SessionID] {
			seen[m.SessionID] = true
			candidates = append(candidates, m.SessionID)
		}
	}
	cur.Close(ctx)
	if len(candidates) == 0 {
		return 0, nil
	}
	latest, err := s.latestRevisions(ctx, bson.M{"session_id": bson.M{"$in": candidates}})
	if err != nil {
		return 0, err
	}
	var ended []string
	for id, m := range latest {
		if m.ExpiresAt.Before(cutoff) {
			ended = append(ended, id)
		}
	}
	if len(ended) == 0 {
		return 0, nil
	}
	res, err := c.DeleteMany(ctx, bson.M{"session_id": bson.M{"$in": ended}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

// CountSessions counts distinct sessions (for tests and operators).
func (s *Store) CountSessions(ctx context.Context) (int, error) {
	c, err := s.coll(ctx, collSessions)
	if err != nil {
		return 0, err
	}
	cur, err := c.Find(ctx, bson.M{"revision": 1})
	if err != nil {
		return 0, err
	}
	defer cur.Close(ctx)
	n := 0
	for cur.Next(ctx) {
		n++
	}
	return n, cur.Err()
}
