package mongostore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/repo/mongostore"
)

// BenchmarkStoreFloor is the floor of store work one successful attest
// costs, with no worker around it (no NATS, no token check, no view): each
// simulated attest makes the four store calls handlers.Attest makes for a
// known user asking for a new session, in its order and with documents
// built as it builds them (handlers/attest.go attest, start, succeed,
// complete; handlers/complete.go):
//
//  1. Store.Claim: the replay claim of (profile, jti), held until the
//     token's expiry plus the default clock skew;
//  2. Store.InsertRevision: revision 1 of the session domain.NewSession
//     starts (one trusted-auth-token factor, the role the token maps,
//     custom claims as a request sends them);
//  3. Store.Record: the outcome, with the reply (handlers.AttestReply with
//     the user and the session, no bearer secrets, as stored) and the
//     tat.session.created event (handlers.AttestEventData with the
//     request's stream position) that the handler encodes (1,138 and
//     about 1,400 bytes: what Attest.Handle, on the handlers' fakes, gives
//     for the same user, roles and claims);
//  4. Store.MarkPublished: the publication marker (in the worker the event
//     is published to NATS between 3 and 4; that is not store work and is
//     left out).
//
// The store is opened as the worker opens it (default batching, layout
// decided on first use: one database per collection on FerretDB) on the
// tests' in-process FerretDB (SQLite), with the worker's _id index. C
// attests run at once, each one's four calls one after the other, every
// attest with ids of its own; C=128 is the worker's default concurrency
// (worker.Defaults, TAT_WORKER_CONCURRENCY), C=16 a moderate rate. The
// documents are built before the timer starts, so what is measured is the
// store's own work: driver encoding, the batchers, FerretDB and SQLite.
//
// Reported: cpu-µs/op, the CPU time of the whole process (the test, the
// driver, FerretDB and SQLite all run in it) per attest, which moves less
// with the machine's load than the wall time; attests/s; docs/insertMany
// and insertMany/op, from the store's batch counters.
//
//	go test -run '^$' -bench BenchmarkStoreFloor -benchtime 4000x ./repo/mongostore/
func BenchmarkStoreFloor(b *testing.B) {
	for _, c := range []int{128, 16} {
		b.Run(fmt.Sprintf("C=%d", c), func(b *testing.B) { storeFloor(b, c) })
	}
}

func storeFloor(b *testing.B, c int) {
	s, _ := openStoreWith(b)
	ctx := context.Background()
	f := newFloorFixture(b)
	run := func(as []floorAttest) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(len(as)) {
						return
					}
					if err := as[i].run(ctx, s); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}

	// Warm up: the first attests decide the layout and make the
	// collections. The embedded FerretDB adds its _id index to a new table
	// within a second; one pass now makes sure the timed inserts pay for
	// that index, as the worker's do.
	run(f.attests(2 * c))
	if b.Failed() {
		return
	}
	if err := ferret.IndexIDs(ctx); err != nil {
		b.Fatal(err)
	}

	as := f.attests(b.N)
	runtime.GC()
	batches0, docs0 := s.BatchCounts()
	b.ResetTimer()
	start, cpu0 := time.Now(), floorProcessCPU()
	run(as)
	elapsed, cpu := time.Since(start), floorProcessCPU()-cpu0
	b.StopTimer()
	batches1, docs1 := s.BatchCounts()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "attests/s")
	if n := batches1 - batches0; n > 0 {
		b.ReportMetric(float64(docs1-docs0)/float64(n), "docs/insertMany")
		b.ReportMetric(float64(n)/float64(b.N), "insertMany/op")
	}
}

// floorFixture is what every attest of the benchmark shares: the profile,
// the known user (in the worker it comes from the view, not the store),
// the custom claims and the stream sequence the requests get.
type floorFixture struct {
	profileID string
	user      domain.User
	claims    json.RawMessage
	seq       uint64
}

func newFloorFixture(b testing.TB) *floorFixture {
	now := time.Now()
	u, err := domain.NewUser(domain.UserSpec{
		UserID: domain.UserIDPrefix + domain.NewUUID(),
		Emails: []domain.UserEmail{{Email: "ada@example.com", Verified: true}},
		Name:   domain.UserName{FirstName: "Ada", LastName: "Lovelace"},
		Status: domain.UserActive,
	}, 1, now.Add(-24*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	return &floorFixture{
		profileID: domain.ProfileIDPrefix + domain.NewUUID(),
		user:      u,
		claims:    json.RawMessage(`{"plan":"pro","org_id":"org-7f3c2a91","locale":"en-GB","seats":25}`),
	}
}

// floorAttest is one attest's four writes, built as the handler builds them.
type floorAttest struct {
	profileID, tokenID, requestID string
	claimUntil, now               time.Time
	session                       domain.SessionState
	outcome                       domain.Outcome
}

// floorSkew is the worker's default TAT_CLOCK_SKEW.
const floorSkew = 60 * time.Second

// attests builds n attests, each with a request id and token id of its
// own, as succeed and complete (handlers/attest.go) build them.
func (f *floorFixture) attests(n int) []floorAttest {
	out := make([]floorAttest, n)
	for i := range out {
		now := time.Now().UTC()
		f.seq++
		reqID := domain.NewUUID()
		jti := domain.NewUUID()
		// Stands in for the raw token (an ES256 JWS of about 500 bytes):
		// only its SHA-256 is ever stored.
		tokenSum := floorSHA256(fmt.Sprintf("eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.%s.%s", jti, reqID))
		tokenExp := now.Truncate(time.Second).Add(2 * time.Hour)
		claims, err := domain.ParseCustomClaims(f.claims)
		if err != nil {
			panic(err)
		}
		ev := domain.FactorEvidence{ProfileID: f.profileID, TokenID: jti, Roles: []string{"member"}}
		sid := domain.SessionIDPrefix + domain.DerivedUUID("session", reqID, tokenSum)
		st := domain.SessionState{Session: domain.NewSession(sid, f.user.UserID, ev, claims, now, 60), Revision: 1}
		sess, user := st.Session, f.user
		data := handlers.AttestEventData{
			RequestID: reqID, ProfileID: f.profileID, UserID: user.UserID, TokenID: jti, TokenSHA256: tokenSum,
			Session: &sess, SessionRevision: st.Revision,
			Position: handlers.Position{Stream: "TAT_ATTEST", StreamSeq: f.seq, RequestedAt: now},
		}
		event, err := domain.NewEvent(domain.EventID("attest", reqID), domain.EventSessionCreated, sid, now, data)
		if err != nil {
			panic(err)
		}
		reply, err := json.Marshal(handlers.AttestReply{StatusCode: 200, RequestID: reqID, UserID: user.UserID, User: &user, Session: &sess})
		if err != nil {
			panic(err)
		}
		out[i] = floorAttest{
			profileID: f.profileID, tokenID: jti, requestID: reqID,
			claimUntil: tokenExp.Add(floorSkew), now: now, session: st,
			outcome: domain.Outcome{
				Key: "attest:" + reqID, Fingerprint: floorSHA256("fingerprint:" + reqID), StatusCode: 200,
				Reply: reply, SessionID: sid, SecretsUntil: tokenExp.Add(floorSkew), Event: event, CreatedAt: now,
			},
		}
	}
	return out
}

// run makes the attest's four store calls, one after the other.
func (a *floorAttest) run(ctx context.Context, s *mongostore.Store) error {
	holder, inserted, err := s.Claim(ctx, a.profileID, a.tokenID, a.requestID, a.claimUntil, a.now)
	if err != nil || !inserted || holder != a.requestID {
		return fmt.Errorf("claim %s: holder %q, inserted %v: %v", a.requestID, holder, inserted, err)
	}
	if _, _, err := s.InsertRevision(ctx, a.session, a.requestID); err != nil {
		return fmt.Errorf("insert revision %s: %w", a.session.Session.SessionID, err)
	}
	stored, made, err := s.Record(ctx, a.outcome)
	if err != nil || !made {
		return fmt.Errorf("record %s: made %v: %v", a.outcome.Key, made, err)
	}
	if err := s.MarkPublished(ctx, stored); err != nil {
		return fmt.Errorf("mark %s published: %w", a.outcome.Key, err)
	}
	return nil
}

func floorSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// floorProcessCPU is the user and system CPU time of this process so far
// (as processCPU in worker/bench_test.go).
func floorProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
