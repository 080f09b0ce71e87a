package mongostore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tat-worker/attest/repo/mongostore"
)

// BenchmarkLayoutConcurrentInserts is what the attest path does to the
// store, without the rest of the worker: three writers, one per collection
// it writes (replay claims, session revisions, outcomes), each sending
// insertMany commands of 4 documents of about 600 bytes back to back. In
// the single layout the three collections share one SQLite file, whose
// one writer lock they take turns at through SQLite's busy handler; in the
// per-collection layout each has a file of its own. ns/op is the wall time
// per insertMany across the three writers; p50-ms and p99-ms are the time
// each insertMany took.
//
//	go test -run '^$' -bench BenchmarkLayoutConcurrentInserts -benchtime 3000x ./repo/mongostore/
func BenchmarkLayoutConcurrentInserts(b *testing.B) {
	filler := strings.Repeat("x", 500)
	for _, l := range []mongostore.Layout{mongostore.LayoutSingle, mongostore.LayoutPerCollection} {
		b.Run(l.String(), func(b *testing.B) {
			s, _ := openStoreWith(b, mongostore.WithLayout(l))
			colls := []string{"token_replays", "session_revisions", "outcomes"}
			ctx := context.Background()
			var mu sync.Mutex
			var took []time.Duration
			var wg sync.WaitGroup
			b.ResetTimer()
			for w, name := range colls {
				c := mongostore.RawCollection(b, s, name)
				n := b.N / len(colls)
				if w < b.N%len(colls) {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, n)
					for i := range n {
						docs := make([]any, 4)
						for j := range docs {
							docs[j] = bson.M{"_id": fmt.Sprintf("%s/%d/%d", name, i, j), "v": filler, "at": time.Now()}
						}
						t0 := time.Now()
						if _, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					took = append(took, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(took)
			if len(took) > 0 {
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
