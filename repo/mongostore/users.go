package mongostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tat-worker/attest/domain"
)

// docModel is the stored form of a profile or user: key fields for
// operators and queries, and the record as its JSON.
type docModel struct {
	ID        string    `bson:"_id"`
	Version   int64     `bson:"version"`
	Deleted   bool      `bson:"deleted"`
	UpdatedAt time.Time `bson:"updated_at"`
	Doc       string    `bson:"doc"`
}

type emailClaimModel struct {
	ID     string `bson:"_id"`
	UserID string `bson:"user_id"`
}

// ClaimEmail inserts email -> userID, or returns the current owner.
func (s *Store) ClaimEmail(ctx context.Context, email, userID string) (string, bool, error) {
	c, err := s.coll(ctx, collEmails)
	if err != nil {
		return "", false, err
	}
	for range 3 {
		err := s.insert(ctx, collEmails, emailClaimModel{ID: email, UserID: userID})
		if err == nil {
			return userID, true, nil
		}
		if !errors.Is(err, errConflict) {
			return "", false, err
		}
		var m emailClaimModel
		ok, err := findByID(ctx, c, email, &m)
		if err != nil {
			return "", false, err
		}
		if ok {
			return m.UserID, false, nil
		}
	}
	return "", false, errors.New("email claim kept changing")
}

// ReleaseEmail deletes the claim if userID holds it.
func (s *Store) ReleaseEmail(ctx context.Context, email, userID string) error {
	c, err := s.coll(ctx, collEmails)
	if err != nil {
		return err
	}
	_, err = c.DeleteOne(ctx, bson.M{"_id": email, "user_id": userID})
	return err
}

// ReleaseOthers deletes userID's claims on addresses not in keep.
func (s *Store) ReleaseOthers(ctx context.Context, userID string, keep []string) error {
	if keep == nil {
		keep = []string{}
	}
	c, err := s.coll(ctx, collEmails)
	if err != nil {
		return err
	}
	_, err = c.DeleteMany(ctx, bson.M{"user_id": userID, "_id": bson.M{"$nin": keep}})
	return err
}

func putDoc(ctx context.Context, s *Store, coll, id string, version int64, deleted bool, updated time.Time, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m := docModel{ID: id, Version: version, Deleted: deleted, UpdatedAt: updated.UTC(), Doc: string(body)}
	c, err := s.coll(ctx, coll)
	if err != nil {
		return err
	}
	_, err = c.ReplaceOne(ctx, bson.M{"_id": id}, m, options.Replace().SetUpsert(true))
	return err
}

// PutUser writes the user's state (user commands are applied one at a
// time, so this replace is uncontended).
func (s *Store) PutUser(ctx context.Context, u domain.User, deleted bool) error {
	return putDoc(ctx, s, collUsers, u.UserID, u.Version, deleted, u.UpdatedAt, u)
}

// InsertUser inserts a user made just in time; an existing one stays.
func (s *Store) InsertUser(ctx context.Context, u domain.User) error {
	body, err := json.Marshal(u)
	if err != nil {
		return err
	}
	err = s.insert(ctx, collUsers, docModel{ID: u.UserID, Version: u.Version, UpdatedAt: u.UpdatedAt.UTC(), Doc: string(body)})
	if errors.Is(err, errConflict) {
		return nil
	}
	return err
}

// PutProfile writes the profile's state (profile commands are applied one
// at a time).
func (s *Store) PutProfile(ctx context.Context, p domain.Profile, deleted bool) error {
	return putDoc(ctx, s, collProfiles, p.ProfileID, p.Version, deleted, p.UpdatedAt, p)
}

// UserRecord is a stored user with its deletion mark.
type UserRecord = domain.UserRecord

// ProfileRecord is a stored profile with its deletion mark.
type ProfileRecord = domain.ProfileRecord

func loadDocs(ctx context.Context, s *Store, coll string, each func(docModel) error) error {
	c, err := s.coll(ctx, coll)
	if err != nil {
		return err
	}
	cur, err := c.Find(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("load %s: %w", coll, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var m docModel
		if err := cur.Decode(&m); err != nil {
			return fmt.Errorf("decode %s: %w", coll, err)
		}
		if err := each(m); err != nil {
			return err
		}
	}
	return cur.Err()
}

// LoadUsers returns every stored user (one scan at start).
func (s *Store) LoadUsers(ctx context.Context) ([]UserRecord, error) {
	var out []UserRecord
	err := loadDocs(ctx, s, collUsers, func(m docModel) error {
		var u domain.User
		if err := json.Unmarshal([]byte(m.Doc), &u); err != nil {
			return fmt.Errorf("decode user %s: %w", m.ID, err)
		}
		out = append(out, UserRecord{User: u, Deleted: m.Deleted})
		return nil
	})
	return out, err
}

// EachUser calls f with every stored user (one scan at start, one decoded
// user at a time).
func (s *Store) EachUser(ctx context.Context, f func(UserRecord) error) error {
	return loadDocs(ctx, s, collUsers, func(m docModel) error {
		var u domain.User
		if err := json.Unmarshal([]byte(m.Doc), &u); err != nil {
			return fmt.Errorf("decode user %s: %w", m.ID, err)
		}
		return f(UserRecord{User: u, Deleted: m.Deleted})
	})
}

// LoadProfiles returns every stored profile (one scan at start).
func (s *Store) LoadProfiles(ctx context.Context) ([]ProfileRecord, error) {
	var out []ProfileRecord
	err := loadDocs(ctx, s, collProfiles, func(m docModel) error {
		var p domain.Profile
		if err := json.Unmarshal([]byte(m.Doc), &p); err != nil {
			return fmt.Errorf("decode profile %s: %w", m.ID, err)
		}
		v, err := domain.NewProfile(p.ProfileSpec, domain.ProfileRules{AllowHTTPJWKS: true}, p.Version, p.CreatedAt, p.UpdatedAt)
		if err != nil {
			return fmt.Errorf("stored profile %s no longer valid: %w", m.ID, err)
		}
		out = append(out, ProfileRecord{Profile: v, Deleted: m.Deleted})
		return nil
	})
	return out, err
}
