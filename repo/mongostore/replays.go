package mongostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type replayModel struct {
	ID        string    `bson:"_id"`
	ProfileID string    `bson:"profile_id"`
	RequestID string    `bson:"request_id"`
	ExpiresAt time.Time `bson:"expires_at"`
}

func replayKey(profileID, tokenID string) string {
	sum := sha256.Sum256([]byte(profileID + "\x00" + tokenID))
	return hex.EncodeToString(sum[:])
}

// Claim inserts the (profile, token id) claim held by requestID. A claim
// found expired is deleted (only that exact claim) and the insert retried.
func (s *Store) Claim(ctx context.Context, profileID, tokenID, requestID string, expires, now time.Time) (string, bool, error) {
	c, err := s.coll(ctx, collReplays)
	if err != nil {
		return "", false, err
	}
	id := replayKey(profileID, tokenID)
	for range 3 {
		err := s.insert(ctx, collReplays, replayModel{ID: id, ProfileID: profileID, RequestID: requestID, ExpiresAt: expires.UTC()})
		if err == nil {
			return requestID, true, nil
		}
		if !errors.Is(err, errConflict) {
			return "", false, fmt.Errorf("insert replay claim: %w", err)
		}
		var m replayModel
		ok, err := findByID(ctx, c, id, &m)
		if err != nil {
			return "", false, fmt.Errorf("read replay claim: %w", err)
		}
		if !ok {
			continue
		}
		if !m.ExpiresAt.Before(now) {
			return m.RequestID, false, nil
		}
		if _, err := c.DeleteOne(ctx, bson.M{"_id": id, "request_id": m.RequestID}); err != nil {
			return "", false, fmt.Errorf("delete expired replay claim: %w", err)
		}
	}
	return "", false, errors.New("replay claim kept changing")
}
