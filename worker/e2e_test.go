package worker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// fixture is a running worker with one PEM profile and one user.
type fixture struct {
	env     *workertest.Env
	w       *workertest.Worker
	iss     *workertest.Issuer
	profile string
	user    string
	email   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureAt(t, nil)
}

// newFixtureAt is newFixture with the worker's clock (nil: the real one).
func newFixtureAt(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	return newFixtureOn(t, workertest.NewEnv(t), nil, now)
}

// newFixtureOn is newFixture on env, with the worker's settings changed by
// mod (nil: the test settings).
func newFixtureOn(t *testing.T, env *workertest.Env, mod func(*worker.Config), now func() time.Time) *fixture {
	t.Helper()
	w := env.StartWorker(mod, now)
	f := &fixture{env: env, w: w, iss: workertest.NewIssuer(t, "https://idp.example.com/", "my-app"), email: "Ada@Example.com"}
	rep := env.Request(env.Subject("profiles", "commands"), "", map[string]any{
		"change_id": "c-1", "op": "upsert", "profile": map[string]any{
			"name": "Test IdP", "issuer": f.iss.Iss, "audience": f.iss.Aud,
			"public_keys":       []string{f.iss.PublicPEM()},
			"attribute_mapping": map[string]any{"email": "email", "token_id": "jti", "role_ids": "roles"},
		}})
	mustStatus(t, rep, 200)
	f.profile = rep["profile"].(map[string]any)["profile_id"].(string)
	rep = env.Request(env.Subject("users", "commands"), "", map[string]any{
		"change_id": "u-1", "op": "upsert", "user": map[string]any{
			"emails": []any{map[string]any{"email": f.email, "verified": true}},
			"name":   map[string]any{"first_name": "Ada", "last_name": "Lovelace"},
		}})
	mustStatus(t, rep, 200)
	f.user = rep["user"].(map[string]any)["user_id"].(string)
	return f
}

func (f *fixture) token(claims map[string]any) string {
	c := map[string]any{"email": "ada@example.com", "jti": uuid.NewString()}
	for k, v := range claims {
		c[k] = v
	}
	return f.iss.Token(c)
}

func (f *fixture) attest(reqID string, extra map[string]any) map[string]any {
	p := map[string]any{"request_id": reqID, "profile_id": f.profile}
	for k, v := range extra {
		p[k] = v
	}
	if _, ok := p["token"]; !ok {
		p["token"] = f.token(nil)
	}
	return f.env.Request(f.env.Subject("attest", "requests"), reqID, p)
}

func mustStatus(t *testing.T, rep map[string]any, want int) {
	t.Helper()
	if got, _ := rep["status_code"].(float64); int(got) != want {
		t.Fatalf("status_code = %v, want %d; reply %v", rep["status_code"], want, rep)
	}
}

// eventsFor returns the outcome events whose data names requestID. A
// repeat's tat.attest.repeated names it too but is not an outcome: it is
// left out (TestAuditRepeats checks those).
func eventsFor(evs []domain.Event, requestID string) []domain.Event {
	var out []domain.Event
	for _, e := range evs {
		if e.Type == domain.EventAttestRepeated {
			continue
		}
		var d struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		if d.RequestID == requestID {
			out = append(out, e)
		}
	}
	return out
}

func TestAttestStartsSessionAndPublishesOneEvent(t *testing.T) {
	f := newFixture(t)
	rep := f.attest("r-1", map[string]any{"session_duration_minutes": 60,
		"session_custom_claims": map[string]any{"plan": "pro"}, "token": f.token(map[string]any{"roles": []string{"admin"}})})
	mustStatus(t, rep, 200)
	if rep["user_id"] != f.user {
		t.Fatalf("user_id = %v, want %s", rep["user_id"], f.user)
	}
	sess := rep["session"].(map[string]any)
	if !strings.HasPrefix(sess["session_id"].(string), "session-") {
		t.Fatalf("session_id %v", sess["session_id"])
	}
	if got := sess["custom_claims"].(map[string]any)["plan"]; got != "pro" {
		t.Fatalf("custom claim plan = %v", got)
	}
	if roles := sess["roles"].([]any); len(roles) != 1 || roles[0] != "admin" {
		t.Fatalf("roles = %v", roles)
	}
	factors := sess["authentication_factors"].([]any)
	if len(factors) != 1 || factors[0].(map[string]any)["delivery_method"] != "trusted_token_exchange" {
		t.Fatalf("factors = %v", factors)
	}
	tok, _ := rep["session_token"].(string)
	if len(tok) < 43 {
		t.Fatalf("session_token too short: %d chars", len(tok))
	}
	jwt, _ := rep["session_jwt"].(string)
	if strings.Count(jwt, ".") != 2 {
		t.Fatalf("session_jwt not a JWS")
	}
	// The session JWT: ES256 with the worker's kid, the session under
	// tat_session, custom claims at the top level, a 5-minute life.
	parts := strings.Split(jwt, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h, c map[string]any
	_ = json.Unmarshal(hdr, &h)
	_ = json.Unmarshal(body, &c)
	if h["alg"] != "ES256" || h["kid"] == nil || c["plan"] != "pro" || c["sub"] != f.user || c["iss"] == nil || c["aud"] == nil ||
		c["tat_session"].(map[string]any)["session_id"] != sess["session_id"] || c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Fatalf("session jwt header %v claims %v", h, c)
	}
	evs := eventsFor(f.env.Events(), "r-1")
	if len(evs) != 1 || evs[0].Type != domain.EventSessionCreated {
		t.Fatalf("events for r-1 = %+v", evs)
	}
	if evs[0].Subject != sess["session_id"] || evs[0].SpecVersion != "1.0" || evs[0].Source != "tat/worker" {
		t.Fatalf("event envelope = %+v", evs[0])
	}
	if s := string(evs[0].Data); strings.Contains(s, tok) || strings.Contains(s, jwt) {
		t.Fatal("event carries a bearer secret")
	}
	var d map[string]any
	_ = json.Unmarshal(evs[0].Data, &d)
	for _, k := range []string{"request_id", "profile_id", "user_id", "token_id", "token_sha256", "session"} {
		if d[k] == nil || d[k] == "" {
			t.Errorf("event data lacks %s: %v", k, d)
		}
	}
}

func TestAttestVerifyOnlyAndAttachToSession(t *testing.T) {
	f := newFixture(t)
	rep := f.attest("v-1", nil)
	mustStatus(t, rep, 200)
	if rep["session"] != nil || rep["session_token"] != nil {
		t.Fatalf("verify-only reply carries a session: %v", rep)
	}
	start := f.attest("s-1", map[string]any{"session_duration_minutes": 30, "session_custom_claims": map[string]any{"a": 1, "b": 2}})
	mustStatus(t, start, 200)
	tok := start["session_token"].(string)
	sid := start["session"].(map[string]any)["session_id"]

	up := f.attest("s-2", map[string]any{"session_token": tok, "session_duration_minutes": 120,
		"session_custom_claims": map[string]any{"a": nil, "c": 3}})
	mustStatus(t, up, 200)
	s2 := up["session"].(map[string]any)
	if s2["session_id"] != sid || up["session_token"] != tok {
		t.Fatalf("attach made another session: %v", up)
	}
	claims := s2["custom_claims"].(map[string]any)
	if _, ok := claims["a"]; ok || claims["b"] == nil || claims["c"] == nil {
		t.Fatalf("claims after merge = %v", claims)
	}
	exp, _ := time.Parse(time.RFC3339, s2["expires_at"].(string))
	if d := time.Until(exp); d < 110*time.Minute || d > 121*time.Minute {
		t.Fatalf("expiry not moved to now+120m: %v", d)
	}
	// By session_jwt as well: the same session, its one factor from this
	// profile now naming the new token, the expiry left where s-2 put it (no
	// duration asked), the claims kept, the next revision.
	jti3 := uuid.NewString()
	up2 := f.attest("s-3", map[string]any{"session_jwt": up["session_jwt"], "token": f.token(map[string]any{"jti": jti3})})
	mustStatus(t, up2, 200)
	s3 := up2["session"].(map[string]any)
	if s3["session_id"] != sid || up2["session_token"] != tok || up2["user_id"] != f.user {
		t.Fatalf("attach by JWT answered another session or user: %v", up2)
	}
	if jwt, _ := up2["session_jwt"].(string); strings.Count(jwt, ".") != 2 {
		t.Fatalf("attach by JWT minted no session JWT: %v", up2)
	}
	if s3["expires_at"] != s2["expires_at"] || s3["started_at"] != start["session"].(map[string]any)["started_at"] {
		t.Fatalf("attach by JWT without a duration moved the session's times: %v -> %v", s2, s3)
	}
	if la2, la3 := s2["last_accessed_at"].(string), s3["last_accessed_at"].(string); la3 < la2 {
		t.Fatalf("last_accessed_at went back: %s -> %s", la2, la3)
	}
	if c3 := s3["custom_claims"].(map[string]any); len(c3) != 2 || c3["b"] != float64(2) || c3["c"] != float64(3) {
		t.Fatalf("claims after attach by JWT = %v", c3)
	}
	factors := s3["authentication_factors"].([]any)
	if len(factors) != 1 {
		t.Fatalf("factors after attach by JWT = %v, want the one trusted_auth_token factor refreshed", factors)
	}
	fct := factors[0].(map[string]any)
	tat, _ := fct["trusted_auth_token_factor"].(map[string]any)
	first := start["session"].(map[string]any)["authentication_factors"].([]any)[0].(map[string]any)
	if fct["type"] != "trusted_auth_token" || fct["delivery_method"] != "trusted_token_exchange" ||
		tat["token_id"] != jti3 || tat["profile_id"] != f.profile || fct["created_at"] != first["created_at"] {
		t.Fatalf("factor after attach by JWT = %v (first %v)", fct, first)
	}
	// both is refused
	both := f.attest("s-4", map[string]any{"session_jwt": up["session_jwt"], "session_token": tok})
	mustStatus(t, both, 400)
	if both["error_type"] != "too_many_session_arguments" {
		t.Fatalf("error_type = %v", both["error_type"])
	}
	types := map[string]string{}
	for _, id := range []string{"v-1", "s-1", "s-2", "s-3", "s-4"} {
		evs := eventsFor(f.env.Events(), id)
		if len(evs) != 1 {
			t.Fatalf("request %s has %d events", id, len(evs))
		}
		types[id] = evs[0].Type
	}
	want := map[string]string{"v-1": domain.EventAttestVerified, "s-1": domain.EventSessionCreated,
		"s-2": domain.EventSessionUpdated, "s-3": domain.EventSessionUpdated, "s-4": domain.EventAttestFailed}
	for id, typ := range want {
		if types[id] != typ {
			t.Errorf("%s: event %s, want %s", id, types[id], typ)
		}
	}
	// Each change is the next revision of the one session, and its event
	// names it and the token that made it.
	for i, id := range []string{"s-1", "s-2", "s-3"} {
		ev := eventsFor(f.env.Events(), id)[0]
		var d struct {
			UserID          string         `json:"user_id"`
			TokenID         string         `json:"token_id"`
			SessionRevision int            `json:"session_revision"`
			Session         map[string]any `json:"session"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if ev.Subject != sid || d.Session["session_id"] != sid || d.UserID != f.user || d.SessionRevision != i+1 {
			t.Errorf("%s: event subject %s, data %+v; want session %s at revision %d", id, ev.Subject, d, sid, i+1)
		}
		if id == "s-3" && (d.TokenID != jti3 || d.Session["expires_at"] != s3["expires_at"]) {
			t.Errorf("s-3: event names token %s, expiry %v; want %s, %v", d.TokenID, d.Session["expires_at"], jti3, s3["expires_at"])
		}
	}
}

func TestRepeatedRequestIDAnswersFirstOutcome(t *testing.T) {
	f := newFixture(t)
	payload := map[string]any{"request_id": "dup-1", "profile_id": f.profile, "token": f.token(nil), "session_duration_minutes": 10}
	// No Nats-Msg-Id: JetStream stores both copies; the worker must see the repeat.
	first := f.env.Request(f.env.Subject("attest", "requests"), "", payload)
	second := f.env.Request(f.env.Subject("attest", "requests"), "", payload)
	mustStatus(t, first, 200)
	mustStatus(t, second, 200)
	if first["session_token"] != second["session_token"] ||
		first["session"].(map[string]any)["session_id"] != second["session"].(map[string]any)["session_id"] {
		t.Fatalf("repeat answered differently:\n%v\n%v", first, second)
	}
	if n := len(eventsFor(f.env.Events(), "dup-1")); n != 1 {
		t.Fatalf("%d events for one request id", n)
	}
	// The same request with the same Nats-Msg-Id, past the command streams'
	// short duplicate window: it reaches the worker and gets the first
	// outcome (JetStream would have dropped it unanswered).
	time.Sleep(1200 * time.Millisecond)
	withID := f.env.Request(f.env.Subject("attest", "requests"), "dup-1", payload)
	if withID["session_token"] != first["session_token"] {
		t.Fatalf("repeat with Nats-Msg-Id answered differently: %v", withID)
	}
	// Someone else reusing the request id (ids are public: events carry
	// them) gets neither the session nor its token, and no outcome event
	// (only an attest.repeated flagged different_request).
	thief := f.env.Request(f.env.Subject("attest", "requests"), "", map[string]any{"request_id": "dup-1", "profile_id": "x", "token": "x.y.z"})
	if thief["error_type"] != "invalid_request" || thief["session_token"] != nil || thief["session"] != nil || thief["user"] != nil {
		t.Fatalf("reused request_id answered with: %v", thief)
	}
	if n := len(eventsFor(f.env.Events(), "dup-1")); n != 1 {
		t.Fatalf("%d events for one request id after reuse", n)
	}
	// A failed request repeated: same failure, one event.
	bad := map[string]any{"request_id": "dup-2", "profile_id": "nope", "token": "x.y.z"}
	a := f.env.Request(f.env.Subject("attest", "requests"), "", bad)
	b := f.env.Request(f.env.Subject("attest", "requests"), "", bad)
	if a["error_type"] != "trusted_token_profile_not_found" || b["error_type"] != a["error_type"] {
		t.Fatalf("failures: %v / %v", a, b)
	}
	if n := len(eventsFor(f.env.Events(), "dup-2")); n != 1 {
		t.Fatalf("%d events for one failed request id", n)
	}
}

func TestTokenReplayIsRefused(t *testing.T) {
	f := newFixture(t)
	tok := f.token(nil)
	mustStatus(t, f.attest("t-1", map[string]any{"token": tok}), 200)
	rep := f.attest("t-2", map[string]any{"token": tok})
	mustStatus(t, rep, 401)
	if rep["error_type"] != "token_replayed" {
		t.Fatalf("error_type = %v", rep["error_type"])
	}
}

func TestStrictDecodingKeepsWorkerRunning(t *testing.T) {
	f := newFixture(t)
	subj := f.env.Subject("attest", "requests")
	cases := map[string]string{
		"not json":      "not json at all",
		"array":         `[1,2]`,
		"null":          `null`,
		"unknown field": fmt.Sprintf(`{"request_id":"x-unknown","profile_id":%q,"token":"a.b.c","extra":1}`, f.profile),
		"wrong type":    `{"request_id":"x-type","profile_id":5,"token":"a.b.c"}`,
		"trailing data": `{"request_id":"x-trail","profile_id":"p","token":"a.b.c"} {}`,
		"over 64 KiB":   `{"request_id":"x-big","profile_id":"p","token":"` + strings.Repeat("a", 70<<10) + `"}`,
		"bad id":        `{"request_id":"has space","profile_id":"p","token":"a.b.c"}`,
	}
	for name, body := range cases {
		rep := f.env.Request(subj, "", body)
		if rep["error_type"] != "invalid_request" || rep["status_code"] != float64(400) {
			t.Errorf("%s: reply %v", name, rep)
		}
	}
	// Every bad request got exactly one attest.failed event; the worker still serves.
	failed := 0
	for _, e := range f.env.Events() {
		if e.Type == domain.EventAttestFailed {
			failed++
		}
	}
	if failed != len(cases) {
		t.Fatalf("%d attest.failed events for %d bad requests", failed, len(cases))
	}
	mustStatus(t, f.attest("after-bad", nil), 200)
}

func TestProfileAndUserCommands(t *testing.T) {
	f := newFixture(t)
	pc := f.env.Subject("profiles", "commands")
	uc := f.env.Subject("users", "commands")
	spec := map[string]any{"profile_id": f.profile, "name": "Renamed", "issuer": f.iss.Iss, "audience": f.iss.Aud,
		"public_keys": []string{f.iss.PublicPEM()}, "attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}
	rep := f.env.Request(pc, "", map[string]any{"change_id": "c-2", "op": "upsert", "expected_version": 1, "profile": spec})
	mustStatus(t, rep, 200)
	if v := rep["profile"].(map[string]any)["version"]; v != float64(2) {
		t.Fatalf("version = %v", v)
	}
	rep = f.env.Request(pc, "", map[string]any{"change_id": "c-3", "op": "upsert", "expected_version": 1, "profile": spec})
	if rep["error_type"] != "version_conflict" || rep["status_code"] != float64(409) {
		t.Fatalf("stale expected_version: %v", rep)
	}
	six := []string{}
	for range 6 {
		six = append(six, workertest.NewIssuer(t, "i", "a").PublicPEM())
	}
	spec2 := map[string]any{"issuer": "i", "audience": "a", "public_keys": six, "attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}
	rep = f.env.Request(pc, "", map[string]any{"change_id": "c-4", "op": "upsert", "profile": spec2})
	if rep["error_type"] != "too_many_pem_files_for_trusted_token_profile" {
		t.Fatalf("six PEMs: %v", rep)
	}
	spec2["public_keys"] = []string{"not a pem"}
	rep = f.env.Request(pc, "", map[string]any{"change_id": "c-5", "op": "upsert", "profile": spec2})
	if rep["error_type"] != "trusted_token_profile_invalid_request" {
		t.Fatalf("bad PEM: %v", rep)
	}
	// duplicate email, case-insensitive
	rep = f.env.Request(uc, "", map[string]any{"change_id": "u-2", "op": "upsert", "user": map[string]any{
		"emails": []any{map[string]any{"email": "ADA@example.COM"}}}})
	if rep["error_type"] != "duplicate_email" {
		t.Fatalf("duplicate email: %v", rep)
	}
	// a repeated change_id answers the first outcome and publishes nothing
	// but its profile.repeated
	again := f.env.Request(pc, "", map[string]any{"change_id": "c-2", "op": "upsert", "profile": spec})
	if again["profile"].(map[string]any)["version"] != float64(2) {
		t.Fatalf("repeat of c-2 applied again: %v", again)
	}
	// deactivate the user: attest refused
	rep = f.env.Request(uc, "", map[string]any{"change_id": "u-3", "op": "upsert", "user": map[string]any{
		"user_id": f.user, "status": "disabled", "emails": []any{map[string]any{"email": f.email}}}})
	mustStatus(t, rep, 200)
	if r := f.attest("after-disable", nil); r["error_type"] != "user_not_found" {
		t.Fatalf("disabled user attested: %v", r)
	}
	// delete the profile: attest refused
	rep = f.env.Request(pc, "", map[string]any{"change_id": "c-6", "op": "delete", "profile_id": f.profile})
	mustStatus(t, rep, 200)
	if r := f.attest("after-delete", nil); r["error_type"] != "trusted_token_profile_not_found" {
		t.Fatalf("deleted profile used: %v", r)
	}
	counts := map[string]int{}
	for _, e := range f.env.Events() {
		counts[e.Type]++
	}
	if counts[domain.EventProfileCreated] != 1 || counts[domain.EventProfileUpdated] != 1 || counts[domain.EventProfileDeleted] != 1 ||
		counts[domain.EventProfileRejected] != 3 || counts[domain.EventUserRejected] != 1 || counts[domain.EventUserUpdated] != 1 {
		t.Fatalf("event counts = %v", counts)
	}
}

func TestSessionsServiceAndRestart(t *testing.T) {
	f := newFixture(t)
	start := f.attest("ss-1", map[string]any{"session_duration_minutes": 60})
	mustStatus(t, start, 200)
	tok := start["session_token"].(string)
	call := func(ep string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		m, err := f.env.NC.Request(f.env.Subject("sessions", ep), b, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		var out map[string]any
		_ = json.Unmarshal(m.Data, &out)
		return out
	}
	auth := call("authenticate", map[string]any{"session_token": tok})
	mustStatus(t, auth, 200)
	if auth["user"].(map[string]any)["user_id"] != f.user || auth["session_jwt"] == "" {
		t.Fatalf("authenticate: %v", auth)
	}
	jwks := call("jwks", map[string]any{})
	keys := jwks["keys"].([]any)
	kid := keys[0].(map[string]any)["kid"]

	// Restart the worker on the same store and NATS: keys, sessions and
	// tokens survive.
	if err := f.w.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	f.w = f.env.StartWorker(nil, nil)
	if k := call("jwks", map[string]any{})["keys"].([]any)[0].(map[string]any)["kid"]; k != kid {
		t.Fatalf("signing key changed across restart: %v != %v", k, kid)
	}
	auth = call("authenticate", map[string]any{"session_jwt": auth["session_jwt"]})
	mustStatus(t, auth, 200)
	rev := call("revoke", map[string]any{"session_token": tok})
	mustStatus(t, rev, 200)
	if r := call("authenticate", map[string]any{"session_token": tok}); r["error_type"] != "session_not_found" {
		t.Fatalf("revoked session authenticated: %v", r)
	}
	if r := f.attest("ss-2", map[string]any{"session_token": tok}); r["error_type"] != "session_not_found" {
		t.Fatalf("attest on revoked session: %v", r)
	}
	revoked := 0
	for _, e := range f.env.Events() {
		if e.Type == domain.EventSessionRevoked {
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("%d session.revoked events", revoked)
	}
	_ = context.Background()
}

func TestAuthenticateWithDurationExtendsSessionEverywhere(t *testing.T) {
	f := newFixture(t)
	other := f.env.StartWorker(nil, nil)
	start := f.attest("ext-1", map[string]any{"session_duration_minutes": 10})
	mustStatus(t, start, 200)
	sid := start["session"].(map[string]any)["session_id"].(string)
	b, _ := json.Marshal(map[string]any{"session_token": start["session_token"], "session_duration_minutes": 600})
	m, err := f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	_ = json.Unmarshal(m.Data, &rep)
	mustStatus(t, rep, 200)
	exp, _ := time.Parse(time.RFC3339, rep["session"].(map[string]any)["expires_at"].(string))
	if d := time.Until(exp); d < 590*time.Minute {
		t.Fatalf("expiry not extended: %v", d)
	}
	// Both workers' views hold the extended session.
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range []*workertest.Worker{f.w, other} {
		for {
			st, ok := w.W.View().Session(sid)
			if ok && st.Session.ExpiresAt.Equal(exp) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a worker's view lacks the extension: %+v", st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Both arguments refused.
	b, _ = json.Marshal(map[string]any{"session_token": start["session_token"], "session_jwt": start["session_jwt"]})
	m, _ = f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 10*time.Second)
	_ = json.Unmarshal(m.Data, &rep)
	if rep["error_type"] != "too_many_session_arguments" {
		t.Fatalf("both arguments: %v", rep)
	}
	// Bad duration refused.
	b, _ = json.Marshal(map[string]any{"session_token": start["session_token"], "session_duration_minutes": 1})
	m, _ = f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 10*time.Second)
	_ = json.Unmarshal(m.Data, &rep)
	if rep["error_type"] != "invalid_session_duration_minutes" {
		t.Fatalf("duration 1: %v", rep)
	}
}
