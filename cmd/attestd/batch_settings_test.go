package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/repo/mongostore"
)

func TestStoreBatchSettings(t *testing.T) {
	s, err := loadSettings(env(map[string]string{}))
	if err != nil || s.StoreBatch != mongostore.DefaultBatch {
		t.Fatalf("defaults: %v %+v", err, s.StoreBatch)
	}
	s, err = loadSettings(env(map[string]string{"TAT_STORE_BATCH_SIZE": "1", "TAT_STORE_BATCH_DELAY": "0s"}))
	if err != nil || s.StoreBatch != (mongostore.BatchOptions{MaxDocs: 1}) {
		t.Fatalf("batching off: %v %+v", err, s.StoreBatch)
	}
	s, err = loadSettings(env(map[string]string{"TAT_STORE_BATCH_SIZE": "100", "TAT_STORE_BATCH_DELAY": "2ms"}))
	if err != nil || s.StoreBatch != (mongostore.BatchOptions{MaxDocs: 100, Delay: 2 * time.Millisecond}) {
		t.Fatalf("set: %v %+v", err, s.StoreBatch)
	}
	_, err = loadSettings(env(map[string]string{"TAT_STORE_BATCH_SIZE": "0", "TAT_STORE_BATCH_DELAY": "1s"}))
	if err == nil || !strings.Contains(err.Error(), "TAT_STORE_BATCH_SIZE") || !strings.Contains(err.Error(), "TAT_STORE_BATCH_DELAY") {
		t.Fatalf("out of range: %v", err)
	}
}
