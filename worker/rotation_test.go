package worker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// keysFixture is a profile and a user on env, and a helper for each thing
// the rotation tests sample.
type keysFixture struct {
	t       *testing.T
	env     *workertest.Env
	iss     *workertest.Issuer
	profile string
}

func newKeysFixture(t *testing.T, env *workertest.Env) *keysFixture {
	t.Helper()
	k := &keysFixture{t: t, env: env, iss: workertest.NewIssuer(t, "https://idp.example.com/", "my-app")}
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{
		"change_id": "c-1", "op": "upsert", "profile": map[string]any{
			"name": "Test IdP", "issuer": k.iss.Iss, "audience": k.iss.Aud, "public_keys": []string{k.iss.PublicPEM()},
			"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"},
		}})
	mustStatus(t, rep, 200)
	k.profile = rep["profile"].(map[string]any)["profile_id"].(string)
	mustStatus(t, env.Request(env.Subject("users", "commands"), "", map[string]any{
		"change_id": "u-1", "op": "upsert", "user": map[string]any{"emails": []any{map[string]any{"email": "ada@example.com", "verified": true}}},
	}), 200)
	return k
}

// session starts a long session and returns its token and first JWT.
func (k *keysFixture) session() (token, jwt string) {
	k.t.Helper()
	rep := k.env.Request(k.env.Subject("attest", "requests"), "", map[string]any{"request_id": uuid.NewString(), "profile_id": k.profile,
		"token": k.iss.Token(map[string]any{"email": "ada@example.com", "jti": uuid.NewString()}), "session_duration_minutes": 600})
	mustStatus(k.t, rep, 200)
	return rep["session_token"].(string), rep["session_jwt"].(string)
}

// service calls <prefix>.<parts> and decodes the reply.
func (k *keysFixture) service(body any, parts ...string) map[string]any {
	k.t.Helper()
	data, _ := json.Marshal(body)
	m, err := k.env.NC.Request(k.env.Subject(parts...), data, 10*time.Second)
	if err != nil {
		k.t.Fatalf("%v: %v", parts, err)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		k.t.Fatalf("%v: %s", parts, m.Data)
	}
	return out
}

// authenticate sends a session JWT to the sessions service several times
// (its instances share a queue group, so the workers take turns) and
// returns the status codes seen, and the kids of the fresh JWTs.
func (k *keysFixture) authenticate(jwt string) (codes []int, kids []string) {
	k.t.Helper()
	for range 4 {
		rep := k.service(map[string]any{"session_jwt": jwt}, "sessions", "authenticate")
		code, _ := rep["status_code"].(float64)
		codes = append(codes, int(code))
		if fresh, ok := rep["session_jwt"].(string); ok {
			kids = append(kids, kidOf(k.t, fresh))
		}
	}
	return codes, kids
}

// httpJWKS is one worker's /.well-known/jwks.json, as kids.
func httpJWKS(t *testing.T, w *workertest.Worker) []string {
	t.Helper()
	res, err := http.Get("http://" + w.HTTP + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set domain.JWKSet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Kid
}

// noPrivateMembers fails when a key object names anything but its kid,
// number, state and times.
func noPrivateMembers(t *testing.T, what string, key any) {
	t.Helper()
	m, ok := key.(map[string]any)
	if !ok {
		t.Fatalf("%s: %v is not an object", what, key)
	}
	for name := range m {
		if !slices.Contains([]string{"kid", "number", "state", "publish_at", "sign_from", "sign_until", "retire_at"}, name) {
			t.Errorf("%s names %q: %v", what, name, m)
		}
	}
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return at
}

// TestKeyRotationAcrossTwoWorkers is the rotation as the fleet lives it:
// two workers on one NATS and store, the second worker's clock 20 s ahead
// of the first (within half the 60 s skew). A rotate command records key 2;
// both workers publish it at once (the rotated event), sign with key 1
// through the publish window, switch at sign_from (each by its own clock:
// for 20 s they sign with different keys, and each accepts the other's
// JWTs), keep publishing and accepting key 1 until retire_at, then drop it
// and refuse its JWTs. A worker restarted in the middle loads both keys; a
// fresh one after the end loads key 2 only.
func TestKeyRotationAcrossTwoWorkers(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	ahead := func() time.Time { return clock.Now().Add(20 * time.Second) }
	env := workertest.NewEnv(t)
	noSchedule := func(c *worker.Config) { c.SessionKeyRotation = 0 }
	a := env.StartWorker(noSchedule, clock.Now)
	b := env.StartWorker(noSchedule, ahead)
	k := newKeysFixture(t, env)
	token, jwt1 := k.session()
	k1 := kidOf(t, jwt1)
	sess := a.W.View()

	// check samples both workers: their own JWKS over HTTP, the kid each
	// signs with, the JWKS of the sessions service, and whether each
	// accepts each JWT given.
	check := func(point string, workers []*workertest.Worker, jwks []string, signs []string, accepted, refused []string) {
		t.Helper()
		for i, w := range workers {
			if got := httpJWKS(t, w); !slices.Equal(got, jwks) {
				t.Errorf("%s: worker %d publishes %v, want %v", point, i, got, jwks)
			}
			if got := w.W.SigningKID(); got != signs[i] {
				t.Errorf("%s: worker %d signs with %s, want %s", point, i, got, signs[i])
			}
			for _, j := range accepted {
				if err := w.W.AcceptSessionJWT(j); err != nil {
					t.Errorf("%s: worker %d refuses a JWT of %s: %v", point, i, kidOf(t, j), err)
				}
			}
			for _, j := range refused {
				if err := w.W.AcceptSessionJWT(j); !errors.Is(err, domain.ErrSessionNotFound) {
					t.Errorf("%s: worker %d accepts a JWT of %s: %v", point, i, kidOf(t, j), err)
				}
			}
		}
		for range 3 {
			var set domain.JWKSet
			rep := k.service(map[string]any{}, "sessions", "jwks")
			raw, _ := json.Marshal(rep)
			_ = json.Unmarshal(raw, &set)
			var kids []string
			for _, key := range set.Keys {
				kids = append(kids, key.Kid)
			}
			if !slices.Equal(kids, jwks) {
				t.Errorf("%s: tat.sessions.jwks has %v, want %v", point, kids, jwks)
			}
		}
		for _, j := range accepted {
			if codes, _ := k.authenticate(j); slices.ContainsFunc(codes, func(c int) bool { return c != 200 }) {
				t.Errorf("%s: authenticate with a JWT of %s answered %v", point, kidOf(t, j), codes)
			}
		}
		for _, j := range refused {
			if codes, _ := k.authenticate(j); slices.ContainsFunc(codes, func(c int) bool { return c != 404 }) {
				t.Errorf("%s: authenticate with a retired JWT of %s answered %v", point, kidOf(t, j), codes)
			}
		}
	}
	both := []*workertest.Worker{a, b}
	check("before the rotation", both, []string{k1}, []string{k1, k1}, []string{jwt1}, nil)

	rep := env.Request(env.Subject("keys", "commands"), "", map[string]any{"change_id": "rot-1", "op": "rotate"})
	mustStatus(t, rep, 200)
	noPrivateMembers(t, "reply key", rep["key"])
	noPrivateMembers(t, "reply previous_key", rep["previous_key"])
	key, prev := rep["key"].(map[string]any), rep["previous_key"].(map[string]any)
	k2 := key["kid"].(string)
	signFrom, retire := parseTime(t, key["sign_from"]), parseTime(t, prev["retire_at"])
	publishAt := parseTime(t, key["publish_at"])
	if prev["kid"] != k1 || k2 == k1 || !signFrom.Equal(publishAt.Add(domain.KeyPublishWindow+time.Minute)) ||
		!retire.Equal(signFrom.Add(domain.SessionJWTLifetime+time.Minute)) || !parseTime(t, prev["sign_until"]).Equal(signFrom) {
		t.Fatalf("rotated: %v", rep)
	}
	// Both workers publish key 2 within moments (the rotated event).
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(httpJWKS(t, a), []string{k1, k2}) || !slices.Equal(httpJWKS(t, b), []string{k1, k2}) {
		if time.Now().After(deadline) {
			t.Fatalf("key 2 not published by both workers: %v / %v", httpJWKS(t, a), httpJWKS(t, b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// publish_at is the clock of the worker that ran the command: a's or b's.
	if !publishAt.Equal(clock.Now()) && !publishAt.Equal(ahead()) {
		t.Fatalf("publish_at %s, clocks at %s and %s", publishAt, clock.Now(), ahead())
	}

	clock.Set(signFrom.Add(-2 * time.Minute)) // b: sign_from - 1m40s
	check("in the publish window", both, []string{k1, k2}, []string{k1, k1}, []string{jwt1}, nil)
	if _, kids := k.authenticate(jwt1); slices.ContainsFunc(kids, func(kid string) bool { return kid != k1 }) {
		t.Errorf("in the publish window a fresh JWT was signed with %v", kids)
	}

	clock.Set(signFrom.Add(-10 * time.Second)) // b: sign_from + 10 s
	lastOfA, err := a.W.MintSessionJWT(domain.Session{SessionID: sessionIDOf(t, sess, token), UserID: userOf(t, sess, token)})
	if err != nil {
		t.Fatal(err)
	}
	firstOfB, err := b.W.MintSessionJWT(domain.Session{SessionID: sessionIDOf(t, sess, token), UserID: userOf(t, sess, token)})
	if err != nil {
		t.Fatal(err)
	}
	if kidOf(t, lastOfA) != k1 || kidOf(t, firstOfB) != k2 {
		t.Fatalf("across sign_from: a signs with %s, b with %s", kidOf(t, lastOfA), kidOf(t, firstOfB))
	}
	check("between the two clocks' sign_from", both, []string{k1, k2}, []string{k1, k2}, []string{jwt1, lastOfA, firstOfB}, nil)

	clock.Set(signFrom.Add(time.Minute))
	check("after the switch", both, []string{k1, k2}, []string{k2, k2}, []string{jwt1, lastOfA, firstOfB}, nil)
	if _, kids := k.authenticate(jwt1); slices.ContainsFunc(kids, func(kid string) bool { return kid != k2 }) {
		t.Errorf("after the switch a fresh JWT was signed with %v", kids)
	}

	// A worker that starts late loads every key not retired.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	b = env.StartWorker(noSchedule, ahead)
	both = []*workertest.Worker{a, b}
	check("after b restarted", both, []string{k1, k2}, []string{k2, k2}, []string{jwt1, lastOfA, firstOfB}, nil)

	// Key 1's last JWT (a's, signed 10 s before sign_from by a's clock)
	// has expired by the time b, 20 s ahead, retires key 1.
	clock.Set(retire.Add(-30 * time.Second)) // b: retire - 10 s
	check("just before retirement", both, []string{k1, k2}, []string{k2, k2}, []string{jwt1, lastOfA, firstOfB}, nil)

	clock.Set(retire) // b: retire + 20 s
	check("after retirement", both, []string{k2}, []string{k2, k2}, []string{firstOfB}, []string{jwt1, lastOfA})
	list := k.service(map[string]any{}, "reads", "keys", "list")
	mustStatus(t, list, 200)
	keys, _ := list["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("keys list: %v", list)
	}
	for i, want := range []struct{ kid, state string }{{k1, "retired"}, {k2, "signing"}} {
		noPrivateMembers(t, "listed key", keys[i])
		got := keys[i].(map[string]any)
		if got["kid"] != want.kid || got["state"] != want.state || got["number"] != float64(i+1) {
			t.Errorf("listed key %d: %v, want %s %s", i+1, got, want.kid, want.state)
		}
	}

	// A restart keeps the keys: a fresh worker on the same store signs
	// with key 2 and never publishes key 1 again.
	for _, w := range both {
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	c := env.StartWorker(noSchedule, clock.Now)
	check("after a restart", []*workertest.Worker{c}, []string{k2}, []string{k2}, []string{firstOfB}, []string{jwt1, lastOfA})

	// One rotated event, naming kids and times only.
	var rotated []domain.Event
	for _, e := range env.Events() {
		if e.Type == domain.EventKeysRotated {
			rotated = append(rotated, e)
		}
	}
	if len(rotated) != 1 || rotated[0].Subject != k2 {
		t.Fatalf("rotated events %+v", rotated)
	}
	var data map[string]any
	_ = json.Unmarshal(rotated[0].Data, &data)
	noPrivateMembers(t, "event key", data["key"])
	noPrivateMembers(t, "event previous_key", data["previous_key"])
	if data["change_id"] != "rot-1" || data["trigger"] != "command" || data["stream"] != "TAT_ADMIN" {
		t.Errorf("rotated data %v", data)
	}
	// Nothing in the logs, replies or events holds key material: the
	// sealed record is the only place.
	for _, l := range []string{a.Logs.String(), b.Logs.String(), c.Logs.String()} {
		if strings.Contains(l, "signing_key") || strings.Contains(l, "PRIVATE") {
			t.Errorf("a log names private key material")
		}
	}
}

func sessionIDOf(t *testing.T, v interface {
	SessionByToken(string) (domain.SessionState, bool)
}, token string) string {
	t.Helper()
	st, ok := v.SessionByToken(token)
	if !ok {
		t.Fatal("session not in the view")
	}
	return st.Session.SessionID
}

func userOf(t *testing.T, v interface {
	SessionByToken(string) (domain.SessionState, bool)
}, token string) string {
	t.Helper()
	st, _ := v.SessionByToken(token)
	return st.Session.UserID
}

// TestKeyRotationCommandOnceAndRateLimited: a rotate command repeated with
// its change_id rotates once (the first reply again, a tat.keys.repeated);
// another rotate while the new key is in its publish window is refused
// (409 key_rotation_in_progress), so a caller cannot stack rotations; once
// the key signs, the next rotation is accepted.
func TestKeyRotationCommandOnceAndRateLimited(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	env := workertest.NewEnv(t)
	env.StartWorker(func(c *worker.Config) { c.SessionKeyRotation = 0 }, clock.Now)
	subject := env.Subject("keys", "commands")
	first := env.Request(subject, "", map[string]any{"change_id": "rot-1", "op": "rotate"})
	mustStatus(t, first, 200)
	for i := range 3 {
		r := env.Request(subject, "", map[string]any{"change_id": fmt.Sprintf("rot-fast-%d", i), "op": "rotate"})
		mustStatus(t, r, 409)
		if r["error_type"] != "key_rotation_in_progress" || r["key"] != nil {
			t.Fatalf("rotation in the publish window: %v", r)
		}
		clock.Advance(time.Minute)
	}
	again := env.Request(subject, "", map[string]any{"change_id": "rot-1", "op": "rotate"})
	mustStatus(t, again, 200)
	if again["key"].(map[string]any)["kid"] != first["key"].(map[string]any)["kid"] {
		t.Fatalf("a repeat named another key: %v / %v", again, first)
	}
	clock.Set(parseTime(t, first["key"].(map[string]any)["sign_from"]))
	next := env.Request(subject, "", map[string]any{"change_id": "rot-2", "op": "rotate"})
	mustStatus(t, next, 200)
	if next["key"].(map[string]any)["number"] != float64(3) {
		t.Fatalf("rotation after sign_from: %v", next)
	}
	count := map[string]int{}
	for _, e := range env.Events() {
		count[e.Type]++
	}
	if count[domain.EventKeysRotated] != 2 || count[domain.EventKeysRejected] != 3 || count[domain.EventKeysRepeated] != 1 {
		t.Errorf("events %v", count)
	}
	list := env.Request(subject, "", map[string]any{"change_id": "rot-1", "op": "rotate"}) // a third copy: still once
	mustStatus(t, list, 200)
	data, _ := json.Marshal(map[string]any{})
	m, err := env.NC.Request(env.Subject("reads", "keys", "list"), data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var keys struct {
		Keys []domain.KeyInfo `json:"keys"`
	}
	_ = json.Unmarshal(m.Data, &keys)
	if len(keys.Keys) != 3 || keys.Keys[1].State != domain.KeySigning || keys.Keys[2].State != domain.KeyNext {
		t.Errorf("keys %+v", keys.Keys)
	}
}

// TestKeyRotationRaceMakesOneKey: two workers record the next key at the
// same instant (as the schedule firing on both would), round after round:
// each time exactly one insert stores it, the other worker adopts it, both
// hold the same keys, and at no instant do two keys sign.
func TestKeyRotationRaceMakesOneKey(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	env := workertest.NewEnv(t)
	noSchedule := func(c *worker.Config) { c.SessionKeyRotation = 0 }
	a := env.StartWorker(noSchedule, clock.Now)
	b := env.StartWorker(noSchedule, clock.Now)
	for round := 2; round <= 6; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		type result struct {
			n        int
			inserted bool
			err      error
		}
		res := make([]result, 2)
		for i, w := range []*workertest.Worker{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				n, ins, err := w.W.RotateOnce(context.Background())
				res[i] = result{n, ins, err}
			}()
		}
		close(start)
		wg.Wait()
		inserted := 0
		for i, r := range res {
			switch {
			case r.inserted && r.err == nil && r.n == round:
				inserted++
			case errors.Is(r.err, domain.ErrKeyRotationInProgress):
			default:
				t.Fatalf("round %d, worker %d: key %d, inserted %v, %v", round, i, r.n, r.inserted, r.err)
			}
		}
		if inserted != 1 {
			t.Fatalf("round %d: %d workers stored key %d (%+v)", round, inserted, round, res)
		}
		ka, kb := a.W.SessionKeyInfos(), b.W.SessionKeyInfos()
		if len(ka) != round || fmt.Sprint(ka) != fmt.Sprint(kb) {
			t.Fatalf("round %d: the workers hold\n%v\n%v", round, ka, kb)
		}
		// Step through the new key's publish window to its sign_from:
		// one signing key at each instant, the same on both.
		for _, at := range []time.Time{clock.Now(), ka[round-1].SignFrom.Add(-time.Second), ka[round-1].SignFrom} {
			clock.Set(at)
			signing := 0
			for _, ki := range a.W.SessionKeyInfos() {
				if ki.State == domain.KeySigning {
					signing++
				}
			}
			if signing != 1 || a.W.SigningKID() != b.W.SigningKID() {
				t.Fatalf("round %d at %s: %d signing keys; a signs with %s, b with %s", round, at, signing, a.W.SigningKID(), b.W.SigningKID())
			}
		}
		if a.W.SigningKID() != ka[round-1].KID {
			t.Fatalf("round %d: key %d does not sign at its sign_from", round, round)
		}
	}
}

// TestKeyRotationOnSchedule: with TAT_SESSION_KEY_ROTATION set, the fleet
// rotates once per interval by itself: one key and one tat.keys.rotated
// (trigger schedule) per interval, however many workers check, and the
// workers learn the key from their timer as well.
func TestKeyRotationOnSchedule(t *testing.T) {
	worker.SetKeyringTick(t, 100*time.Millisecond)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	env := workertest.NewEnv(t)
	hourly := func(c *worker.Config) { c.SessionKeyRotation = time.Hour }
	a := env.StartWorker(hourly, clock.Now)
	b := env.StartWorker(hourly, clock.Now)
	waitKeys := func(n int) []domain.KeyInfo {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			ka, kb := a.W.SessionKeyInfos(), b.W.SessionKeyInfos()
			if len(ka) == n && len(kb) == n {
				return ka
			}
			if time.Now().After(deadline) {
				t.Fatalf("want %d keys on both workers: %v / %v", n, ka, kb)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond) // several ticks: not due yet
	waitKeys(1)
	clock.Advance(time.Hour + time.Minute)
	keys := waitKeys(2)
	time.Sleep(500 * time.Millisecond) // more ticks: key 2 is in its window, then young
	waitKeys(2)
	clock.Set(keys[1].SignFrom.Add(time.Hour))
	waitKeys(3)
	time.Sleep(500 * time.Millisecond)
	waitKeys(3)

	deadline := time.Now().Add(10 * time.Second)
	for {
		var rotated []domain.Event
		for _, e := range env.Events() {
			if e.Type == domain.EventKeysRotated {
				rotated = append(rotated, e)
			}
		}
		if len(rotated) == 2 {
			for _, e := range rotated {
				var d struct {
					Trigger  string         `json:"trigger"`
					ChangeID string         `json:"change_id"`
					Key      domain.KeyInfo `json:"key"`
				}
				_ = json.Unmarshal(e.Data, &d)
				if d.Trigger != "schedule" || d.ChangeID != "" || d.Key.KID != e.Subject {
					t.Errorf("scheduled rotation event %s", e.Data)
				}
			}
			break
		}
		if time.Now().After(deadline) || len(rotated) > 2 {
			t.Fatalf("%d rotated events for 2 scheduled rotations", len(rotated))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Set moves the clock to at.
func (c *testClock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = at
}

// TestKeyRotationForgedEventInjectsNothing: a tat.keys.rotated event is
// only a nudge to re-read the sealed records: one forged by whoever may
// publish on the events subject (naming a key of its own, a flood of them)
// adds no key, changes no state, and the worker keeps answering.
func TestKeyRotationForgedEventInjectsNothing(t *testing.T) {
	env := workertest.NewEnv(t)
	w := env.StartWorker(func(c *worker.Config) { c.SessionKeyRotation = 0 }, nil)
	before := w.W.SessionKeyInfos()
	jwksBefore := httpJWKS(t, w)
	ev, err := domain.NewEvent("evt-"+uuid.NewString(), domain.EventKeysRotated, "evil", time.Now(), map[string]any{
		"trigger": "command", "key": map[string]any{"kid": "evil", "number": 2, "sign_from": time.Now().Format(time.RFC3339),
			"x": "AAAA", "y": "AAAA", "d": "AAAA"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	for range 50 {
		if _, err := env.JS.Publish(context.Background(), env.Subject("events", "keys", "rotated"), body); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a re-read or two
	if after := w.W.SessionKeyInfos(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("keys changed: %v, then %v", before, after)
	}
	if got := httpJWKS(t, w); !slices.Equal(got, jwksBefore) || slices.Contains(got, "evil") {
		t.Fatalf("JWKS %v, before %v", got, jwksBefore)
	}
	if !w.W.Ready() {
		t.Fatal("worker not ready")
	}
}

// TestKeyRotationKeepsTheV1Record: a fleet's existing record
// session-keys-v1, as workers before rotation stored it, is key 1: it
// signs until the first rotation, and its session-token key never changes,
// so a session token made before any rotation still authenticates after
// key 1 has retired.
func TestKeyRotationKeepsTheV1Record(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	env := workertest.NewEnv(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	tokenKey := make([]byte, 32)
	_, _ = rand.Read(tokenKey)
	legacy, _ := json.Marshal(map[string]any{"token_key": tokenKey, "signing_key": der, "kid": "tat-legacy"})
	if _, err := env.Store().LoadOrCreateSecret(context.Background(), "session-keys-v1", env.MasterKey, legacy); err != nil {
		t.Fatal(err)
	}
	w := env.StartWorker(func(c *worker.Config) { c.SessionKeyRotation = 0 }, clock.Now)
	k := newKeysFixture(t, env)
	token, jwt := k.session()
	if kidOf(t, jwt) != "tat-legacy" || w.W.SigningKID() != "tat-legacy" {
		t.Fatalf("key 1 is not the stored record's: a JWT of %s", kidOf(t, jwt))
	}
	sid := sessionIDOf(t, w.W.View(), token)
	if want := (&domain.Issuer{TokenKey: tokenKey}).SessionToken(sid).Reveal(); token != want {
		t.Fatal("the session token is not made with the stored token key")
	}
	rep := env.Request(env.Subject("keys", "commands"), "", map[string]any{"change_id": "rot-1", "op": "rotate"})
	mustStatus(t, rep, 200)
	if rep["previous_key"].(map[string]any)["kid"] != "tat-legacy" || rep["previous_key"].(map[string]any)["number"] != float64(1) {
		t.Fatalf("rotation from the v1 record: %v", rep)
	}
	clock.Set(parseTime(t, rep["previous_key"].(map[string]any)["retire_at"]))
	if err := w.W.AcceptSessionJWT(jwt); !errors.Is(err, domain.ErrSessionNotFound) {
		t.Fatalf("key 1's JWT after it retired: %v", err)
	}
	auth := k.service(map[string]any{"session_token": token}, "sessions", "authenticate")
	mustStatus(t, auth, 200)
	if kidOf(t, auth["session_jwt"].(string)) != rep["key"].(map[string]any)["kid"] {
		t.Errorf("a fresh JWT after the rotation: %s", kidOf(t, auth["session_jwt"].(string)))
	}
}
