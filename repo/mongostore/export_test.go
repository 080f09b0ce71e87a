package mongostore

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// RawCollection is the collection named name where s's layout keeps it,
// for tests that read or write documents behind the store's back.
func RawCollection(t testing.TB, s *Store, name string) *mongo.Collection {
	t.Helper()
	c, err := s.coll(context.Background(), name)
	if err != nil {
		t.Fatalf("collection %s: %v", name, err)
	}
	return c
}
