package worker_test

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker/workertest"
)

func benchFixture(b *testing.B) *fixture {
	b.Helper()
	env := workertest.NewEnv(b)
	w := env.StartWorker(nil, nil)
	f := &fixture{env: env, w: w, iss: workertest.NewIssuer(b, "https://idp.example.com/", "my-app"), email: "ada@example.com"}
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": "c", "op": "upsert", "profile": map[string]any{
		"issuer": f.iss.Iss, "audience": f.iss.Aud, "public_keys": []string{f.iss.PublicPEM()},
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
	f.profile = rep["profile"].(map[string]any)["profile_id"].(string)
	env.Request(env.Subject("users", "commands"), "", map[string]any{"change_id": "u", "op": "upsert", "user": map[string]any{
		"emails": []any{map[string]any{"email": f.email}}}})
	return f
}

// BenchmarkAttest measures attest requests end to end on the embedded
// servers (publish, verify, replay claim, session insert, outcome, event,
// reply), published in batches of 200; the time runs until every reply is
// in. Run with scripts/bench.sh.
func BenchmarkAttest(b *testing.B) {
	for _, mode := range []string{"session", "verify-only"} {
		b.Run(mode, func(b *testing.B) {
			f := benchFixture(b)
			const batch = 200
			// The pull requests of the attest consumer: how many messages
			// one round trip to the server brings.
			var pulls atomic.Int64
			sub, err := f.env.NC.Subscribe("$JS.API.CONSUMER.MSG.NEXT.*.attest-workers", func(*nats.Msg) { pulls.Add(1) })
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			done := 0
			for done < b.N {
				n := min(batch, b.N-done)
				payloads := make([]map[string]any, 0, n)
				for range n {
					id := uuid.NewString()
					p := map[string]any{"request_id": id, "profile_id": f.profile,
						"token": f.iss.Token(map[string]any{"email": f.email, "jti": id})}
					if mode == "session" {
						p["session_duration_minutes"] = 60
					}
					payloads = append(payloads, p)
				}
				replies := publishAll(b, f.env, payloads)
				for _, r := range replies {
					if r["status_code"] != float64(200) {
						b.Fatalf("reply %v", r)
					}
				}
				done += n
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			// CPU time of the whole process (worker, NATS, FerretDB and the
			// test signing its tokens) per attest: on a shared machine it
			// moves much less with the load than ns/op and req/s.
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(pulls.Load())/float64(b.N), "pulls/op")
		})
	}
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerifyToken is the token checklist alone (ES256), no I/O.
func BenchmarkVerifyToken(b *testing.B) {
	iss := workertest.NewIssuer(b, "https://idp.example.com/", "my-app")
	pub, err := domain.ParsePEMPublicKey(iss.PublicPEM())
	if err != nil {
		b.Fatal(err)
	}
	tok := iss.Token(map[string]any{"email": "a@example.com", "jti": "j"})
	pol := domain.TokenPolicy{Issuer: iss.Iss, Audience: iss.Aud, Mapping: domain.AttributeMapping{Email: "email", TokenID: "jti"}, Skew: time.Minute}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := domain.VerifyToken(tok, pol, []domain.PublicKey{pub}, now); err != nil {
			b.Fatal(fmt.Sprint(err))
		}
	}
}

// BenchmarkProfilePropagation measures how long a profile change takes to
// reach every worker's in-memory view: from publishing the command to both
// of two workers holding the new version.
func BenchmarkProfilePropagation(b *testing.B) {
	env := workertest.NewEnv(b)
	w1 := env.StartWorker(nil, nil)
	w2 := env.StartWorker(nil, nil)
	iss := workertest.NewIssuer(b, "https://idp.example.com/", "my-app")
	spec := map[string]any{"profile_id": "p-bench", "issuer": iss.Iss, "audience": iss.Aud, "public_keys": []string{iss.PublicPEM()},
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}
	var worst time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		spec["name"] = fmt.Sprint("v", i)
		env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": fmt.Sprint("pc-", i), "op": "upsert", "profile": spec})
		for {
			p1, ok1 := w1.W.View().Profile("p-bench")
			p2, ok2 := w2.W.View().Profile("p-bench")
			if ok1 && ok2 && p1.Version == int64(i+1) && p2.Version == int64(i+1) {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
