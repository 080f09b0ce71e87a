package worker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// publishAll publishes attest payloads at once and collects the replies by
// request_id.
func publishAll(t testing.TB, env *workertest.Env, payloads []map[string]any) map[string]map[string]any {
	t.Helper()
	prefix := nats.NewInbox()
	replies := make(chan *nats.Msg, len(payloads))
	sub, err := env.NC.ChanSubscribe(prefix+".*", replies)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acks []jetstream.PubAckFuture
	for i, p := range payloads {
		b, _ := json.Marshal(p)
		m := &nats.Msg{Subject: env.Subject("attest", "requests"), Data: b, Header: nats.Header{}}
		m.Header.Set(worker.ReplyHeader, fmt.Sprintf("%s.%d", prefix, i))
		f, err := env.JS.PublishMsgAsync(m)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		case <-ctx.Done():
			t.Fatal("publish not acknowledged")
		}
	}
	out := map[string]map[string]any{}
	for len(out) < len(payloads) {
		select {
		case m := <-replies:
			var r map[string]any
			_ = json.Unmarshal(m.Data, &r)
			out[r["request_id"].(string)] = r
		case <-ctx.Done():
			t.Fatalf("%d of %d replies", len(out), len(payloads))
		}
	}
	return out
}

func TestJITProvisioningRaceMakesOneUser(t *testing.T) {
	env := workertest.NewEnv(t)
	env.StartWorker(nil, nil)
	env.StartWorker(nil, nil)
	iss := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": "p", "op": "upsert", "profile": map[string]any{
		"issuer": iss.Iss, "audience": iss.Aud, "public_keys": []string{iss.PublicPEM()}, "can_jit_provision": true,
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti", "external_user_id": "sub"}}})
	mustStatus(t, rep, 200)
	profile := rep["profile"].(map[string]any)["profile_id"].(string)
	var payloads []map[string]any
	for i := range 10 {
		email := fmt.Sprintf("New.User%d@Example.com", i)
		for j := range 3 {
			id := fmt.Sprintf("jit-%d-%d", i, j)
			if j == 1 {
				email = strings.ToLower(email) // case differs: same user
			}
			payloads = append(payloads, map[string]any{"request_id": id, "profile_id": profile, "session_duration_minutes": 5,
				"token": iss.Token(map[string]any{"email": email, "jti": uuid.NewString(), "sub": "ext-" + fmt.Sprint(i)})})
		}
	}
	replies := publishAll(t, env, payloads)
	for i := range 10 {
		var uid string
		for j := range 3 {
			r := replies[fmt.Sprintf("jit-%d-%d", i, j)]
			mustStatus(t, r, 200)
			if uid == "" {
				uid = r["user_id"].(string)
			} else if r["user_id"] != uid {
				t.Fatalf("email %d provisioned two users: %s and %s", i, uid, r["user_id"])
			}
			if ext := r["user"].(map[string]any)["external_id"]; ext != fmt.Sprintf("ext-%d", i) {
				t.Fatalf("external_id = %v", ext)
			}
		}
	}
	created := 0
	for _, e := range env.Events() {
		if e.Type == domain.EventUserCreated {
			created++
		}
	}
	if created != 10 {
		t.Fatalf("%d user.created events for 10 new users", created)
	}
	users, err := env.Store().LoadUsers(context.Background())
	if err != nil || len(users) != 10 {
		t.Fatalf("store holds %d users (%v), want 10", len(users), err)
	}
}

// TestNoSecretReachesLogsEventsOrStreams handles tokens, session tokens and
// session JWTs, good and bad, and then searches every log line, every event,
// the dead letters and the store's outcomes for any of them.
func TestNoSecretReachesLogsEventsOrStreams(t *testing.T) {
	f := newFixture(t)
	var secrets []string
	keep := func(s any) {
		if v, ok := s.(string); ok && v != "" {
			secrets = append(secrets, v)
		}
	}
	good := f.token(nil)
	keep(good)
	rep := f.attest("sec-1", map[string]any{"token": good, "session_duration_minutes": 30})
	mustStatus(t, rep, 200)
	keep(rep["session_token"])
	keep(rep["session_jwt"])
	up := f.attest("sec-2", map[string]any{"session_token": rep["session_token"], "session_jwt": nil})
	mustStatus(t, up, 200)
	keep(up["session_jwt"])
	// Refusals that echo nothing: a replay, a tampered token, an expired one,
	// a bad session token, session JWTs of another signer, bad JSON. Each
	// gets its error and exactly one attest.failed event.
	wantFailure(t, f.env, f.attest("sec-3", map[string]any{"token": good}), 401, "token_replayed")
	tampered := good[:len(good)-4] + "AAAA"
	keep(tampered)
	wantFailure(t, f.env, f.attest("sec-4", map[string]any{"token": tampered}), 401, "invalid_trusted_auth_token")
	expired := f.token(map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix(), "nbf": nil})
	keep(expired)
	wantFailure(t, f.env, f.attest("sec-5", map[string]any{"token": expired}), 401, "jwt_expired")
	fake := "tat_st_" + strings.Repeat("Q", 43)
	keep(fake)
	wantFailure(t, f.env, f.attest("sec-6", map[string]any{"session_token": fake}), 404, "session_not_found")
	// The session JWT of sec-2, its header and claims unchanged, signed by
	// another ES256 key: under the other key's own kid, and under the
	// worker's kid.
	genuine := up["session_jwt"].(string)
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := map[string]string{
		"sec-8": resignJWT(t, genuine, "attacker-kid", attacker),
		"sec-9": resignJWT(t, genuine, "", attacker),
	}
	for _, id := range []string{"sec-8", "sec-9"} {
		keep(forged[id])
		wantFailure(t, f.env, f.attest(id, map[string]any{"session_jwt": forged[id]}), 404, "session_not_found")
		b, _ := json.Marshal(map[string]any{"session_jwt": forged[id]})
		m, err := f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var auth map[string]any
		_ = json.Unmarshal(m.Data, &auth)
		if auth["status_code"] != float64(404) || auth["error_type"] != "session_not_found" || auth["session_jwt"] != nil {
			t.Fatalf("authenticate with a forged session JWT (%s): %v", id, auth)
		}
	}
	// The genuine JWT those were made from still attaches: the forgeries
	// were refused for their signature alone.
	mustStatus(t, f.attest("sec-10", map[string]any{"session_jwt": genuine}), 200)
	// Bad JSON that contains a token: the decoder must not quote it.
	bad := f.env.Request(f.env.Subject("attest", "requests"), "", `{"request_id":"sec-7","profile_id":"x","token":"`+good+`","extra":true}`)
	wantFailure(t, f.env, bad, 400, "invalid_request")
	b, _ := json.Marshal(map[string]any{"session_token": rep["session_token"]})
	m, err := f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var auth map[string]any
	_ = json.Unmarshal(m.Data, &auth)
	mustStatus(t, auth, 200)

	var haystacks []string
	haystacks = append(haystacks, f.w.Logs.String())
	for _, e := range f.env.Events() {
		raw, _ := json.Marshal(e)
		haystacks = append(haystacks, string(raw))
	}
	for _, d := range f.env.RawStreamData("TAT_DEADLETTER") {
		haystacks = append(haystacks, string(d))
	}
	if len(f.w.Logs.String()) < 100 {
		t.Fatal("no logs captured: the test would prove nothing")
	}
	for _, h := range haystacks {
		for _, s := range secrets {
			if strings.Contains(h, s) {
				t.Fatalf("a bearer secret (%d chars) leaked into: %.200s", len(s), h)
			}
			// Also the signature part alone (a JWT split by a logger).
			if parts := strings.Split(s, "."); len(parts) == 3 && strings.Contains(h, parts[2]) {
				t.Fatalf("a JWT signature leaked into: %.200s", h)
			}
		}
	}
	if n := len(secrets); n < 6 {
		t.Fatalf("only %d secrets collected", n)
	}
}

// wantFailure checks a refused attest: its status_code and error_type, and
// exactly one event for its request id, an attest.failed naming the same.
func wantFailure(t *testing.T, env *workertest.Env, rep map[string]any, status int, errType string) {
	t.Helper()
	mustStatus(t, rep, status)
	if rep["error_type"] != errType {
		t.Fatalf("error_type = %v, want %s; reply %v", rep["error_type"], errType, rep)
	}
	if rep["session"] != nil || rep["session_token"] != nil || rep["session_jwt"] != nil || rep["user"] != nil {
		t.Fatalf("a refusal carries a session, user or secret: %v", rep)
	}
	id, _ := rep["request_id"].(string)
	evs := eventsFor(env.Events(), id)
	if len(evs) != 1 || evs[0].Type != domain.EventAttestFailed {
		t.Fatalf("events for %q: %+v, want one attest.failed", id, evs)
	}
	var d struct {
		StatusCode int    `json:"status_code"`
		ErrorType  string `json:"error_type"`
	}
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.StatusCode != status || d.ErrorType != errType {
		t.Fatalf("attest.failed for %q names %d %s, want %d %s", id, d.StatusCode, d.ErrorType, status, errType)
	}
}

// resignJWT signs raw's header and claims again with key, with the header's
// kid replaced by kid unless kid is empty (then the worker's kid stays).
func resignJWT(t *testing.T, raw, kid string, key *ecdsa.PrivateKey) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	header := parts[0]
	if kid != "" {
		hb, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil {
			t.Fatal(err)
		}
		var h map[string]any
		if err := json.Unmarshal(hb, &h); err != nil {
			t.Fatal(err)
		}
		h["kid"] = kid
		hb, _ = json.Marshal(h)
		header = base64.RawURLEncoding.EncodeToString(hb)
	}
	input := header + "." + parts[1]
	signer, err := jws.SignerFor(jwa.ES256())
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(key, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	out := input + "." + base64.RawURLEncoding.EncodeToString(sig)
	if out == raw {
		t.Fatal("re-signing produced the genuine token")
	}
	return out
}

// TestReplySubjectIntoAStreamIsRefused: a reply carries bearer secrets, so
// a Tat-Reply-To naming one of the worker's own stream subjects is refused.
func TestReplySubjectIntoAStreamIsRefused(t *testing.T) {
	f := newFixture(t)
	id := "into-stream"
	b, _ := json.Marshal(map[string]any{"request_id": id, "profile_id": f.profile, "token": f.token(nil), "session_duration_minutes": 5})
	m := &nats.Msg{Subject: f.env.Subject("attest", "requests"), Data: b, Header: nats.Header{}}
	m.Header.Set(worker.ReplyHeader, f.env.Subject("events", "stolen"))
	if _, err := f.env.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(eventsFor(f.env.Events(), id)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no outcome")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range f.env.Events() {
		if e.Type == "" || strings.Contains(string(e.Data), "session_token") {
			t.Fatalf("a reply was written to the events stream: %+v", e)
		}
	}
}

// TestDeletedJITUserComesBackAsNewerVersion: after an admin deletes a user
// made just in time, the next token for that address provisions it again
// as a newer version that every view takes, not a ghost.
func TestDeletedJITUserComesBackAsNewerVersion(t *testing.T) {
	env := workertest.NewEnv(t)
	w := env.StartWorker(nil, nil)
	iss := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{"change_id": "p", "op": "upsert", "profile": map[string]any{
		"issuer": iss.Iss, "audience": iss.Aud, "public_keys": []string{iss.PublicPEM()}, "can_jit_provision": true,
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
	profile := rep["profile"].(map[string]any)["profile_id"].(string)
	attest := func(id string) map[string]any {
		return env.Request(env.Subject("attest", "requests"), "", map[string]any{"request_id": id, "profile_id": profile,
			"token": iss.Token(map[string]any{"email": "ghost@example.com", "jti": id})})
	}
	first := attest("g-1")
	mustStatus(t, first, 200)
	uid := first["user_id"].(string)
	mustStatus(t, env.Request(env.Subject("users", "commands"), "", map[string]any{"change_id": "del", "op": "delete", "user_id": uid}), 200)
	again := attest("g-2")
	mustStatus(t, again, 200)
	if again["user_id"] != uid || again["user"].(map[string]any)["version"] != float64(3) {
		t.Fatalf("reprovisioned user: %v", again["user"])
	}
	if u, ok := w.W.View().User(uid); !ok || u.Version != 3 {
		t.Fatalf("view holds %+v (live %v)", u, ok)
	}
	created := 0
	for _, e := range env.Events() {
		if e.Type == domain.EventUserCreated {
			created++
		}
	}
	if created != 2 {
		t.Fatalf("%d user.created events, want 2", created)
	}
}

// TestMissFloodSharesCatchUps: requests that miss the view (here, unknown
// profiles) each catch the view up, but concurrent ones share one stream
// info request per round: a flood costs far fewer JetStream API calls than
// requests.
func TestMissFloodSharesCatchUps(t *testing.T) {
	env := workertest.NewEnv(t)
	env.StartWorker(nil, nil)
	ctx := context.Background()
	before, err := env.JS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var payloads []map[string]any
	for i := range n {
		payloads = append(payloads, map[string]any{"request_id": fmt.Sprint("miss-", i), "profile_id": fmt.Sprint("nope-", i), "token": "a.b.c"})
	}
	for id, r := range publishAll(t, env, payloads) {
		if r["error_type"] != "trusted_token_profile_not_found" {
			t.Fatalf("%s: %v", id, r)
		}
	}
	after, err := env.JS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := after.API.Total - before.API.Total
	t.Logf("%d misses made %d JetStream API calls", n, calls)
	if calls >= n/2 {
		t.Fatalf("%d misses made %d JetStream API calls: catch-ups are not shared", n, calls)
	}
}
