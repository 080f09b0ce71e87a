package mongostore

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/tat-worker/attest/domain"
)

// TestInsertResults: each caller of a batch gets the answer for its own
// index; an error not about documents goes to every caller.
func TestInsertResults(t *testing.T) {
	if res := insertResults(nil, 3); res[0] != nil || res[1] != nil || res[2] != nil {
		t.Fatalf("no error: %v", res)
	}
	net := errors.New("connection reset")
	for i, r := range insertResults(net, 3) {
		if !errors.Is(r, net) {
			t.Fatalf("caller %d of a failed command got %v", i, r)
		}
	}
	bwe := mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{
		{WriteError: mongo.WriteError{Index: 1, Code: 11000, Message: "E11000 duplicate key"}},
		{WriteError: mongo.WriteError{Index: 3, Code: 2, Message: "bad value"}},
	}}
	res := insertResults(bwe, 4)
	if res[0] != nil || res[2] != nil {
		t.Fatalf("inserted documents got errors: %v", res)
	}
	if !errors.Is(res[1], domain.ErrConflict) {
		t.Fatalf("duplicate key: %v", res[1])
	}
	if res[3] == nil || errors.Is(res[3], domain.ErrConflict) {
		t.Fatalf("other write error: %v", res[3])
	}
	bwe.WriteConcernError = &mongo.WriteConcernError{Code: 64, Message: "waiting for replication timed out"}
	res = insertResults(bwe, 4)
	if res[0] == nil || res[2] == nil || !errors.Is(res[1], domain.ErrConflict) {
		t.Fatalf("a write concern error leaves no document acknowledged: %v", res)
	}
	// An index outside the batch: nothing can be said of any document.
	bad := mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Index: 7, Code: 11000}}}}
	for i, r := range insertResults(bad, 2) {
		if r == nil || errors.Is(r, domain.ErrConflict) {
			t.Fatalf("caller %d: %v", i, r)
		}
	}
	if !duplicateKeyCode(16460, "insert failed:  E11000 duplicate key") || duplicateKeyCode(16460, "other") {
		t.Fatal("mongos duplicate key code")
	}
}
