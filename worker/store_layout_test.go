package worker_test

import (
	"strings"
	"testing"

	"github.com/tat-worker/attest/worker/workertest"
)

// TestStartLogsTheStoreLayout: at start the worker says where the store
// keeps its collections; on the tests' FerretDB, a new store is one
// database per collection (repo/mongostore/layout.go).
func TestStartLogsTheStoreLayout(t *testing.T) {
	env := workertest.NewEnv(t)
	w := env.StartWorker(nil, nil)
	logs := w.Logs.String()
	if !strings.Contains(logs, `"message":"store ready"`) || !strings.Contains(logs, `per-collection: databases `+env.Database+`-<collection>`) {
		t.Fatalf("no store layout in the start-up log:\n%s", logs)
	}
}
