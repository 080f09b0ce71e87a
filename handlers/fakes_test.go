package handlers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// In-memory fakes of the handlers' ports. Each honours its interface's
// contract as the real store does: inserts are under a unique key, the
// first insert wins, and a conflict answers what is stored (with
// domain.ErrConflict where the contract says so).

var (
	_ handlers.OutcomeStore = (*fakeOutcomes)(nil)
	_ handlers.Publisher    = (*fakePublisher)(nil)
	_ handlers.ReplayStore  = (*fakeReplays)(nil)
	_ handlers.SessionStore = (*fakeSessions)(nil)
	_ handlers.UserStore    = (*fakeUsers)(nil)
	_ handlers.KeySource    = fakeKeys{}
	_ handlers.Barrier      = (*fakeBarrier)(nil)
)

// fakeOutcomes is an OutcomeStore.
type fakeOutcomes struct {
	mu   sync.Mutex
	m    map[string]handlers.Outcome
	gets map[string]int // Get calls, by key
	// down, while set, makes Record fail as an unreachable store does
	// (reads still work): the store fails between a request's first writes
	// and its outcome.
	down atomic.Bool
}

var errStoreDown = errors.New("fake store: down")

func (f *fakeOutcomes) Record(_ context.Context, o handlers.Outcome) (handlers.Outcome, bool, error) {
	if f.down.Load() {
		return handlers.Outcome{}, false, errStoreDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]handlers.Outcome{}
	}
	if cur, ok := f.m[o.Key]; ok {
		return cur, false, nil
	}
	f.m[o.Key] = o
	return o, true, nil
}

func (f *fakeOutcomes) Get(_ context.Context, key string) (handlers.Outcome, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gets == nil {
		f.gets = map[string]int{}
	}
	f.gets[key]++
	o, ok := f.m[key]
	return o, ok, nil
}

// reads returns how many Get calls each key has had, and forgets them.
func (f *fakeOutcomes) reads() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.gets
	f.gets = nil
	return r
}

func (f *fakeOutcomes) MarkPublished(_ context.Context, m handlers.Outcome) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.m[m.Key]; ok {
		o.Published = true
		f.m[m.Key] = o
	}
	return nil
}

// fakePublisher is a Publisher: an events stream that, like JetStream
// within its duplicate window, stores an event id once.
type fakePublisher struct {
	mu     sync.Mutex
	events []domain.Event
	// calls counts PublishEvent calls, those JetStream would drop included.
	calls atomic.Int64
	// refuse, while set, is an event type whose publication fails.
	refuse string
}

func (f *fakePublisher) PublishEvent(_ context.Context, e domain.Event) error {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != "" && e.Type == f.refuse {
		return errPublishRefused
	}
	for _, have := range f.events {
		if have.ID == e.ID {
			return nil
		}
	}
	f.events = append(f.events, e)
	return nil
}

// Events returns the events published so far.
func (f *fakePublisher) Events() []domain.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]domain.Event(nil), f.events...)
}

// OfType returns the events of type typ.
func (f *fakePublisher) OfType(typ string) []domain.Event {
	var out []domain.Event
	for _, e := range f.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// fakeReplays is a ReplayStore.
type fakeReplays struct {
	mu sync.Mutex
	m  map[string]replayClaim
}

type replayClaim struct {
	holder  string
	expires time.Time
}

// count returns how many claims are stored.
func (f *fakeReplays) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

func replayKey(profileID, tokenID string) string { return profileID + "\x00" + tokenID }

func (f *fakeReplays) Claim(_ context.Context, profileID, tokenID, requestID string, expires, now time.Time) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]replayClaim{}
	}
	k := replayKey(profileID, tokenID)
	if c, ok := f.m[k]; ok && !c.expires.Before(now) {
		return c.holder, false, nil
	}
	f.m[k] = replayClaim{holder: requestID, expires: expires}
	return requestID, true, nil
}

// Holder returns the request holding the claim on (profile, token id).
func (f *fakeReplays) Holder(profileID, tokenID string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[replayKey(profileID, tokenID)]
	return c.holder, ok
}

// fakeSessions is a SessionStore: revisions under (session id, revision).
type fakeSessions struct {
	mu   sync.Mutex
	revs map[string]storedRevision
}

type storedRevision struct {
	st domain.SessionState
	by string
}

func revisionKey(id string, rev int64) string { return fmt.Sprintf("%s#%d", id, rev) }

func (f *fakeSessions) InsertRevision(_ context.Context, st domain.SessionState, requestID string) (domain.SessionState, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revs == nil {
		f.revs = map[string]storedRevision{}
	}
	k := revisionKey(st.Session.SessionID, st.Revision)
	if cur, ok := f.revs[k]; ok {
		return cur.st, cur.by, domain.ErrConflict
	}
	f.revs[k] = storedRevision{st: st, by: requestID}
	return st, requestID, nil
}

// Revisions returns how many revisions of session id are stored.
func (f *fakeSessions) Revisions(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.revs {
		if r.st.Session.SessionID == id {
			n++
		}
	}
	return n
}

// Count returns how many revisions are stored in all.
func (f *fakeSessions) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.revs)
}

// fakeUsers is a UserStore: email claims are inserts under the address.
type fakeUsers struct {
	mu     sync.Mutex
	emails map[string]string
	users  map[string]storedUser
}

type storedUser struct {
	u       domain.User
	deleted bool
}

func (f *fakeUsers) init() {
	if f.emails == nil {
		f.emails, f.users = map[string]string{}, map[string]storedUser{}
	}
}

func (f *fakeUsers) ClaimEmail(_ context.Context, email, userID string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	if owner, ok := f.emails[email]; ok {
		return owner, false, nil
	}
	f.emails[email] = userID
	return userID, true, nil
}

func (f *fakeUsers) ReleaseEmail(_ context.Context, email, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.emails[email] == userID {
		delete(f.emails, email)
	}
	return nil
}

func (f *fakeUsers) ReleaseOthers(_ context.Context, userID string, keep []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := map[string]bool{}
	for _, e := range keep {
		kept[e] = true
	}
	for e, owner := range f.emails {
		if owner == userID && !kept[e] {
			delete(f.emails, e)
		}
	}
	return nil
}

func (f *fakeUsers) PutUser(_ context.Context, u domain.User, deleted bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	f.users[u.UserID] = storedUser{u: u, deleted: deleted}
	return nil
}

func (f *fakeUsers) InsertUser(_ context.Context, u domain.User) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	if _, ok := f.users[u.UserID]; !ok {
		f.users[u.UserID] = storedUser{u: u}
	}
	return nil
}

// Stored returns what the store holds: users and email claims.
func (f *fakeUsers) Stored() (users, emails int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.users), len(f.emails)
}

// fakeBarrier is a Barrier whose view is always caught up.
type fakeBarrier struct{ calls atomic.Int64 }

func (f *fakeBarrier) CatchUp(context.Context) error {
	f.calls.Add(1)
	return nil
}

// fakeKeys is a KeySource for JWKS profiles; the PEM profiles of these
// tests never reach it.
type fakeKeys struct{}

var errNoJWKS = errors.New("fakeKeys: no JWKS in these tests")

func (fakeKeys) Keys(context.Context, string) ([]domain.PublicKey, error) {
	return nil, domain.ErrJWKSUnavailable.Wrap(errNoJWKS, "")
}

func (fakeKeys) RefreshUnknownKID(context.Context, string) ([]domain.PublicKey, error) {
	return nil, domain.ErrJWKSUnavailable.Wrap(errNoJWKS, "")
}

func (fakeKeys) Ensure(context.Context, string) error {
	return domain.ErrJWKSUnavailable.Wrap(errNoJWKS, "")
}

// clock is a settable clock for the handlers' Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// idp is a trusted third party that signs tokens with a real ES256 key.
type idp struct {
	key      *ecdsa.PrivateKey
	iss, aud string
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &idp{key: k, iss: "https://idp.example.com/", aud: "my-app"}
}

func (p *idp) publicPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// token signs a token for email with id jti, valid from issued for ten
// minutes; extra claims are added (a nil value removes one).
func (p *idp) token(t testing.TB, email, jti string, issued time.Time, extra map[string]any) string {
	t.Helper()
	c := map[string]any{"iss": p.iss, "aud": p.aud, "email": email, "jti": jti,
		"iat": issued.Unix(), "nbf": issued.Unix(), "exp": issued.Add(10 * time.Minute).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	tok, err := domain.SignJWT(p.key, "ES256", "", c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// t0 is the fixed start of every handler test's clock.
var t0 = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

const testSkew = 60 * time.Second

// env is one Attest and one Sessions handler on fakes, sharing a view, with
// one PEM profile trusting idp.
type env struct {
	clock    *clock
	view     *handlers.View
	issuer   *domain.Issuer
	outcomes *fakeOutcomes
	pub      *fakePublisher
	replays  *fakeReplays
	sessions *fakeSessions
	users    *fakeUsers
	barrier  *fakeBarrier
	idp      *idp
	profile  domain.Profile
	attest   *handlers.Attest
	svc      *handlers.Sessions
	jtis     atomic.Int64
}

func newEnv(t testing.TB, jit bool) *env {
	t.Helper()
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tokenKey := make([]byte, 32)
	_, _ = rand.Read(tokenKey)
	is := &domain.Issuer{TokenKey: tokenKey, Keys: []domain.SigningKey{{KID: "worker-key-1", Private: sk}}, Iss: "urn:tat:worker", Aud: "tat"}
	e := &env{
		clock:    &clock{t: t0},
		view:     handlers.NewView(func(id string) string { return is.SessionToken(id).Reveal() }),
		issuer:   is,
		outcomes: &fakeOutcomes{},
		pub:      &fakePublisher{},
		replays:  &fakeReplays{},
		sessions: &fakeSessions{},
		users:    &fakeUsers{},
		barrier:  &fakeBarrier{},
		idp:      newIDP(t),
	}
	e.profile, err = domain.NewProfile(domain.ProfileSpec{
		ProfileID: "trusted-auth-token-profile-test", Name: "Test IdP",
		Issuer: e.idp.iss, Audience: e.idp.aud, PublicKeys: []string{e.idp.publicPEM(t)},
		AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"},
		CanJITProvision:  jit,
	}, domain.ProfileRules{}, 1, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.view.PutProfile(e.profile, false)
	e.attest = &handlers.Attest{
		View: e.view, Barrier: e.barrier, Keys: fakeKeys{}, Replays: e.replays, Sessions: e.sessions, Revisions: e.sessions, Users: e.users,
		Pub: e.pub, Done: &handlers.Completer{Outcomes: e.outcomes, Pub: e.pub},
		Issuer: is, Now: e.clock.Now, Skew: testSkew, MaxTokenBytes: domain.DefaultMaxTokenBytes,
	}
	e.svc = &handlers.Sessions{View: e.view, Barrier: e.barrier, Sessions: e.sessions, Pub: e.pub, Issuer: is, Now: e.clock.Now}
	return e
}

// addUser puts a user in the view and its email claim in the store, as a
// user command would.
func (e *env) addUser(t testing.TB, id, email, status string) domain.User {
	t.Helper()
	u, err := domain.NewUser(domain.UserSpec{UserID: id, Emails: []domain.UserEmail{{Email: email, Verified: true}}, Status: status}, 1, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	norm, _ := domain.NormalizeEmail(email)
	if _, ok, _ := e.users.ClaimEmail(context.Background(), norm, id); !ok {
		t.Fatalf("email %s already claimed", email)
	}
	_ = e.users.PutUser(context.Background(), u, false)
	e.view.PutUser(u, false)
	return u
}

// token signs a fresh token (a new jti) for email, issued at issued.
func (e *env) token(t testing.TB, email string, issued time.Time) (raw, jti string) {
	t.Helper()
	jti = fmt.Sprintf("jti-%d", e.jtis.Add(1))
	return e.idp.token(t, email, jti, issued, nil), jti
}

// attestReply runs one attest request delivered as in says (Data is set
// from payload) and decodes its reply.
func (e *env) attestReply(t testing.TB, in handlers.Input, payload map[string]any) handlers.AttestReply {
	t.Helper()
	if _, ok := payload["profile_id"]; !ok {
		payload["profile_id"] = e.profile.ProfileID
	}
	data, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	in.Data = data
	out, err := e.attest.Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("Handle returned a transient error: %v", err)
	}
	var r handlers.AttestReply
	if err := json.Unmarshal(out.Reply, &r); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, out.Reply)
	}
	return r
}

// startSession attests email's fresh token for a 60-minute session and
// returns the reply.
func (e *env) startSession(t testing.TB, reqID, email string) handlers.AttestReply {
	t.Helper()
	tok, _ := e.token(t, email, e.clock.Now())
	r := e.attestReply(t, handlers.Input{}, map[string]any{"request_id": reqID, "token": tok, "session_duration_minutes": 60})
	if r.StatusCode != 200 || r.Session == nil || r.SessionToken == "" || r.SessionJWT == "" {
		t.Fatalf("start session for %s: %+v", email, r)
	}
	return r
}

// eventsFor returns the events whose data names request id.
func (e *env) eventsFor(requestID string) []domain.Event {
	var out []domain.Event
	for _, ev := range e.pub.Events() {
		var d handlers.AttestEventData
		if json.Unmarshal(ev.Data, &d) == nil && d.RequestID == requestID {
			out = append(out, ev)
		}
	}
	return out
}

// wantRefused checks a refusal: its status and error_type, no session, user
// or secret in the reply, and exactly one attest.failed event for it naming
// the same error.
func (e *env) wantRefused(t testing.TB, reqID string, r handlers.AttestReply, want *domain.Error) {
	t.Helper()
	if r.StatusCode != want.Status || r.ErrorType != want.Code {
		t.Fatalf("reply %d %s (%s), want %d %s", r.StatusCode, r.ErrorType, r.ErrorMessage, want.Status, want.Code)
	}
	if r.Session != nil || r.User != nil || r.UserID != "" || r.SessionToken != "" || r.SessionJWT != "" {
		t.Errorf("a refusal carries a session, user or secret: %+v", r)
	}
	evs := e.eventsFor(reqID)
	if len(evs) != 1 || evs[0].Type != domain.EventAttestFailed {
		t.Fatalf("events for %s: %+v, want one attest.failed", reqID, evs)
	}
	var d handlers.AttestEventData
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.ErrorType != want.Code || d.StatusCode != want.Status {
		t.Errorf("attest.failed data names %d %s, want %d %s", d.StatusCode, d.ErrorType, want.Status, want.Code)
	}
}
