package mongostore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker/embedded"
)

// The contract suite of the store, run against a real MongoDB-wire server
// (FerretDB on SQLite, in-process). Each test gets its own database.

var (
	ferretOnce sync.Once
	ferret     *embedded.Ferret
	ferretErr  error
)

func openStore(t testing.TB) *mongostore.Store {
	t.Helper()
	ferretOnce.Do(func() {
		dir, err := mkTemp()
		if err != nil {
			ferretErr = err
			return
		}
		ferret, ferretErr = embedded.StartFerret("127.0.0.1:0", dir)
	})
	if ferretErr != nil {
		t.Fatalf("ferretdb: %v", ferretErr)
	}
	ctx := context.Background()
	s, err := mongostore.Open(ctx, ferret.URI(), fmt.Sprintf("t%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	if err := s.Setup(ctx); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return s
}

func TestOutcomeFirstWins(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	ev, _ := domain.NewEvent("e1", domain.EventAttestVerified, "s", time.Now(), map[string]string{"a": "b"})
	first := domain.Outcome{Key: "attest:r1", StatusCode: 200, Reply: json.RawMessage(`{"n":1}`), SessionID: "session-1", Event: ev, CreatedAt: time.Now()}
	got, inserted, err := s.Record(ctx, first)
	if err != nil || !inserted || got.Key != first.Key {
		t.Fatalf("first record: %v %v %+v", err, inserted, got)
	}
	second := first
	second.Reply, second.StatusCode = json.RawMessage(`{"n":2}`), 500
	got, inserted, err = s.Record(ctx, second)
	if err != nil || inserted || string(got.Reply) != `{"n":1}` || got.StatusCode != 200 || got.SessionID != "session-1" || got.Event.ID != "e1" {
		t.Fatalf("second record must return the first: %v %v %+v", err, inserted, got)
	}
	if got.Published {
		t.Fatal("published before MarkPublished")
	}
	if err := s.MarkPublished(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, first.Key)
	if err != nil || !ok || !got.Published {
		t.Fatalf("after mark: %v %v %+v", err, ok, got)
	}
	if _, ok, _ := s.Get(ctx, "attest:none"); ok {
		t.Fatal("found a missing outcome")
	}
	refused := domain.Outcome{Key: "attest:r2", StatusCode: 404, ErrorType: "user_not_found",
		Reply: json.RawMessage(`{"status_code":404,"error_type":"user_not_found"}`), Event: ev, CreatedAt: time.Now()}
	if _, _, err := s.Record(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Get(ctx, refused.Key); err != nil || !ok || got.ErrorType != "user_not_found" || got.StatusCode != 404 {
		t.Fatalf("refused outcome round trip: %v %v %+v", err, ok, got)
	}
	if got.ErrorType != "" {
		t.Fatalf("success outcome has ErrorType %q", got.ErrorType)
	}
}

func TestConcurrentRecordsOneWinner(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, replies := 0, map[string]bool{}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := domain.Outcome{Key: "attest:race", Reply: json.RawMessage(fmt.Sprintf(`{"w":%d}`, i)), CreatedAt: time.Now()}
			got, inserted, err := s.Record(ctx, o)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if inserted {
				wins++
			}
			replies[string(got.Reply)] = true
		}()
	}
	wg.Wait()
	if wins != 1 || len(replies) != 1 {
		t.Fatalf("%d winners, %d distinct outcomes seen", wins, len(replies))
	}
}

func TestReplayClaim(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	now := time.Now()
	holder, inserted, err := s.Claim(ctx, "p1", "jti-1", "r1", now.Add(time.Minute), now)
	if err != nil || !inserted || holder != "r1" {
		t.Fatalf("first claim: %v %v %s", err, inserted, holder)
	}
	holder, inserted, err = s.Claim(ctx, "p1", "jti-1", "r2", now.Add(time.Minute), now)
	if err != nil || inserted || holder != "r1" {
		t.Fatalf("replay must name the holder: %v %v %s", err, inserted, holder)
	}
	holder, inserted, _ = s.Claim(ctx, "p1", "jti-1", "r1", now.Add(time.Minute), now)
	if inserted || holder != "r1" {
		t.Fatalf("same request again: %v %s", inserted, holder)
	}
	// Another profile: its own namespace.
	if _, inserted, _ := s.Claim(ctx, "p2", "jti-1", "r3", now.Add(time.Minute), now); !inserted {
		t.Fatal("a token id is per profile")
	}
	// Expired: the claim is taken over.
	later := now.Add(2 * time.Minute)
	holder, inserted, err = s.Claim(ctx, "p1", "jti-1", "r4", later.Add(time.Minute), later)
	if err != nil || !inserted || holder != "r4" {
		t.Fatalf("expired claim not replaced: %v %v %s", err, inserted, holder)
	}
}

func TestConcurrentClaimsOneWinner(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	holders := map[string]int{}
	wins := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, ins, err := s.Claim(ctx, "p", "same", fmt.Sprintf("r%d", i), now.Add(time.Hour), now)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			holders[h]++
			if ins {
				wins++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if wins != 1 || len(holders) != 1 {
		t.Fatalf("wins %d holders %v", wins, holders)
	}
}

func session(id string, rev int64, exp time.Time) domain.SessionState {
	return domain.SessionState{Revision: rev, Session: domain.Session{SessionID: id, UserID: "u", ExpiresAt: exp, StartedAt: time.Now().UTC().Truncate(time.Second)}}
}

func TestSessionRevisions(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, _, err := s.InsertRevision(ctx, session("s1", 1, exp), "r1"); err != nil {
		t.Fatal(err)
	}
	st2 := session("s1", 2, exp.Add(time.Hour))
	if _, _, err := s.InsertRevision(ctx, st2, "r2"); err != nil {
		t.Fatal(err)
	}
	other := session("s1", 2, exp)
	stored, by, err := s.InsertRevision(ctx, other, "r3")
	if !errors.Is(err, domain.ErrConflict) || by != "r2" || !stored.Session.ExpiresAt.Equal(st2.Session.ExpiresAt) {
		t.Fatalf("conflict must return the stored revision: %v %s %+v", err, by, stored)
	}
	if _, _, err := s.InsertRevision(ctx, session("old", 1, time.Now().Add(-3*time.Hour)), "r4"); err != nil {
		t.Fatal(err)
	}
	all, err := s.LoadSessions(ctx, time.Now())
	if err != nil || len(all) != 1 || all[0].Revision != 2 {
		t.Fatalf("load latest live sessions: %v %+v", err, all)
	}
	if n, _ := s.CountSessions(ctx); n != 2 {
		t.Fatalf("count %d", n)
	}
	n, err := s.Sweep(ctx, time.Now(), time.Hour, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want the ended session's revision", n, err)
	}
}

func TestEmailClaimsAndUsers(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	owner, ins, err := s.ClaimEmail(ctx, "a@x.com", "u1")
	if err != nil || !ins || owner != "u1" {
		t.Fatalf("claim: %v %v %s", err, ins, owner)
	}
	owner, ins, _ = s.ClaimEmail(ctx, "a@x.com", "u2")
	if ins || owner != "u1" {
		t.Fatalf("second claim must name u1: %v %s", ins, owner)
	}
	if err := s.ReleaseEmail(ctx, "a@x.com", "u2"); err != nil {
		t.Fatal(err)
	}
	if owner, _, _ := s.ClaimEmail(ctx, "a@x.com", "u3"); owner != "u1" {
		t.Fatal("a release by a non-owner removed the claim")
	}
	_ = s.ReleaseEmail(ctx, "a@x.com", "u1")
	if owner, ins, _ := s.ClaimEmail(ctx, "a@x.com", "u3"); !ins || owner != "u3" {
		t.Fatal("released address not claimable")
	}
	now := time.Now()
	u, err := domain.NewUser(domain.UserSpec{UserID: "u3", Emails: []domain.UserEmail{{Email: "a@x.com"}}}, 1, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u2 := u
	u2.Version = 9
	if err := s.InsertUser(ctx, u2); err != nil {
		t.Fatalf("insert of an existing user must be a no-op: %v", err)
	}
	users, _ := s.LoadUsers(ctx)
	if len(users) != 1 || users[0].User.Version != 1 {
		t.Fatalf("users %+v", users)
	}
	u.Version = 2
	if err := s.PutUser(ctx, u, true); err != nil {
		t.Fatal(err)
	}
	users, _ = s.LoadUsers(ctx)
	if len(users) != 1 || !users[0].Deleted || users[0].User.Version != 2 {
		t.Fatalf("after delete %+v", users)
	}
}

func TestSecretSealedAndShared(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	a, err := s.LoadOrCreateSecret(ctx, "k", master, []byte("first"))
	if err != nil || string(a) != "first" {
		t.Fatalf("%v %s", err, a)
	}
	b, err := s.LoadOrCreateSecret(ctx, "k", master, []byte("second"))
	if err != nil || string(b) != "first" {
		t.Fatalf("second start must load the stored secret: %v %s", err, b)
	}
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	if _, err := s.LoadOrCreateSecret(ctx, "k", other, []byte("x")); !errors.Is(err, mongostore.ErrWrongMasterKey) {
		t.Fatalf("wrong master key: %v", err)
	}
}

func TestProfilesRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	p, err := domain.NewProfile(domain.ProfileSpec{ProfileID: "p1", Issuer: "i", Audience: "a", JWKSURL: "https://x/jwks",
		AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"}}, domain.ProfileRules{}, 1, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutProfile(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	p.Version = 2
	p.Name = "renamed"
	if err := s.PutProfile(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	ps, err := s.LoadProfiles(ctx)
	if err != nil || len(ps) != 1 || ps[0].Profile.Name != "renamed" || ps[0].Profile.Version != 2 {
		t.Fatalf("%v %+v", err, ps)
	}
}

// TestShortenedSessionStaysShort: a session whose latest revision ended is
// gone on load and swept whole, though an older revision had a longer life.
func TestShortenedSessionStaysShort(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if _, _, err := s.InsertRevision(ctx, session("short", 1, now.Add(10*time.Hour)), "r1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.InsertRevision(ctx, session("short", 2, now.Add(-3*time.Hour)), "r2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.InsertRevision(ctx, session("live", 1, now.Add(time.Hour)), "r3"); err != nil {
		t.Fatal(err)
	}
	all, err := s.LoadSessions(ctx, now)
	if err != nil || len(all) != 1 || all[0].Session.SessionID != "live" {
		t.Fatalf("load: %v %+v", err, all)
	}
	n, err := s.Sweep(ctx, now, time.Hour, 24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("sweep removed %d (%v), want both revisions of the ended session", n, err)
	}
	if c, _ := s.CountSessions(ctx); c != 1 {
		t.Fatalf("%d sessions left", c)
	}
}

func TestReleaseOthersKeepsListedAddresses(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for _, e := range []string{"a@x.com", "b@x.com", "c@x.com"} {
		if _, _, err := s.ClaimEmail(ctx, e, "u1"); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = s.ClaimEmail(ctx, "d@x.com", "u2")
	if err := s.ReleaseOthers(ctx, "u1", []string{"b@x.com"}); err != nil {
		t.Fatal(err)
	}
	for e, want := range map[string]string{"a@x.com": "u9", "b@x.com": "u1", "c@x.com": "u9", "d@x.com": "u2"} {
		if owner, _, _ := s.ClaimEmail(ctx, e, "u9"); owner != want {
			t.Errorf("%s owned by %s, want %s", e, owner, want)
		}
	}
	if err := s.ReleaseOthers(ctx, "u1", nil); err != nil {
		t.Fatal(err)
	}
	if owner, _, _ := s.ClaimEmail(ctx, "b@x.com", "u8"); owner != "u8" {
		t.Errorf("b@x.com still owned by %s after releasing all", owner)
	}
}

// TestReplayClaimsOutliveExpiryByTheGrace: the sweeper keeps a claim for
// domain.ReplayClaimGrace past its expiry, so a redelivery judged up to
// domain.RedeliveryLookback back still finds it; and an outcome keeps the
// instant its secrets stop being given out.
func TestReplayClaimsOutliveExpiryByTheGrace(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if domain.RedeliveryLookback >= domain.ReplayClaimGrace {
		t.Fatalf("lookback %v must be shorter than the grace %v", domain.RedeliveryLookback, domain.ReplayClaimGrace)
	}
	recent := now.Add(-domain.RedeliveryLookback) // expired, within the grace
	old := now.Add(-domain.ReplayClaimGrace - time.Minute)
	for id, exp := range map[string]time.Time{"recent": recent, "old": old} {
		if _, ins, err := s.Claim(ctx, "p-grace", id, "r-"+id, exp, exp.Add(-time.Minute)); err != nil || !ins {
			t.Fatalf("claim %s: %v %v", id, ins, err)
		}
	}
	if _, err := s.Sweep(ctx, now, time.Hour, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	// Judged at an instant before "recent" expired, the claim is still held.
	holder, ins, err := s.Claim(ctx, "p-grace", "recent", "r-other", now.Add(time.Hour), recent.Add(-time.Second))
	if err != nil || ins || holder != "r-recent" {
		t.Fatalf("a claim within the grace was swept or taken over: %v %v %s", err, ins, holder)
	}
	holder, ins, err = s.Claim(ctx, "p-grace", "old", "r-other", now.Add(time.Hour), now)
	if err != nil || !ins || holder != "r-other" {
		t.Fatalf("a claim past the grace was kept: %v %v %s", err, ins, holder)
	}

	ev, _ := domain.NewEvent("e-secrets", domain.EventSessionCreated, "s", now, map[string]string{"a": "b"})
	o := domain.Outcome{Key: "attest:secrets", StatusCode: 200, Reply: json.RawMessage(`{}`), SessionID: "session-x",
		SecretsUntil: now.Add(11 * time.Minute), Event: ev, CreatedAt: now}
	if _, _, err := s.Record(ctx, o); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, o.Key)
	if err != nil || !ok || !got.SecretsUntil.Equal(o.SecretsUntil) {
		t.Fatalf("secrets_until round trip: %v %v %v, want %v", err, ok, got.SecretsUntil, o.SecretsUntil)
	}
}
