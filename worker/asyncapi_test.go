package worker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/embedded"
	"github.com/tat-worker/attest/worker/workertest"
)

// TestAsyncAPIContract keeps docs/asyncapi.yaml true to the worker. It runs
// a real worker (in-process NATS with JetStream, in-process FerretDB),
// sends it real profile, user and key commands, attest requests (repeats
// and a reused id among them), sessions-service and reads-service requests,
// and captures every message on the wire under the prefix (commands,
// service requests, events, dead letters), every reply, and every event
// stored in the events stream. Each is validated
// against the schema the document gives its channel (or its operation's
// reply). It fails when:
//
//   - a subject the worker uses, or an event type it publishes, has no
//     channel in the document;
//   - a payload, or a header the document names, does not match its schema
//     (reply, event and dead-letter schemas forbid undocumented members, and
//     the test checks that they do by adding one to each object of every
//     output it sees, free-form custom_claims and trusted_metadata aside);
//   - a request the test sends on purpose outside the schema is accepted by
//     the schema, or is not refused by the worker;
//   - a channel of the document is never seen (a stale channel).
func TestAsyncAPIContract(t *testing.T) {
	spec := loadAsyncAPI(t, filepath.Join("..", "docs", "asyncapi.yaml"))
	env, ferret := newContractEnv(t)
	// The worker's clock, moved forward at the end so that the rotation
	// schedule fires; its key records are re-read (and the schedule
	// checked) every second.
	var clockAhead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(clockAhead.Load())) }
	worker.SetKeyringTick(t, time.Second)
	w := env.StartWorker(func(c *worker.Config) {
		c.MaxDeliver = 2 // the dead-letter case below gives up after two deliveries
		c.AckWait = 5 * time.Second
	}, now)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker log:\n%s", w.Logs.String())
		}
	})
	r := newContractRun(t, env, spec)

	iss := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	jitIss := workertest.NewIssuer(t, "https://jit.example.com/", "my-app")
	jwksIss := workertest.NewIssuer(t, "https://jwks.example.com/", "my-app")
	jwksIss.KID = "jwks-key-1"
	goodJWKS := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(rw).Encode(map[string]any{"keys": []any{jwksIss.JWK()}})
	}))
	t.Cleanup(goodJWKS.Close)
	badJWKS := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(badJWKS.Close)
	mapping := map[string]any{"email": "email", "token_id": "jti", "role_ids": "roles"}
	token := func(i *workertest.Issuer, email string, extra map[string]any) string {
		c := map[string]any{"email": email, "jti": uuid.NewString()}
		for k, v := range extra {
			c[k] = v
		}
		return i.Token(c)
	}

	// ---- Profiles ----------------------------------------------------
	pc := env.Subject("profiles", "commands")
	pemSpec := map[string]any{"profile_id": "aa-pem", "name": "PEM IdP", "issuer": iss.Iss, "audience": iss.Aud,
		"public_keys": []string{iss.PublicPEM()}, "attribute_mapping": mapping, "max_token_lifetime_seconds": 3600}
	rep := r.command(pc, "p-create", map[string]any{"change_id": "p-create", "op": "upsert", "profile": pemSpec}, false)
	r.wantStatus(rep, 200, "")
	// A repeat (no Nats-Msg-Id, so JetStream keeps it) gets the first
	// outcome, and a profile.repeated event.
	r.wantStatus(r.command(pc, "", map[string]any{"change_id": "p-create", "op": "upsert", "profile": pemSpec}, false), 200, "")
	pemSpec["name"] = "PEM IdP, renamed"
	r.wantStatus(r.command(pc, "p-update", map[string]any{"change_id": "p-update", "op": "upsert", "expected_version": 1, "profile": pemSpec}, false), 200, "")
	rep = r.command(pc, "p-jit", map[string]any{"change_id": "p-jit", "op": "upsert", "profile": map[string]any{
		"issuer": jitIss.Iss, "audience": jitIss.Aud, "public_keys": []string{jitIss.PublicPEM()},
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}, "can_jit_provision": true}}, false)
	r.wantStatus(rep, 200, "")
	jitProfile := rep["profile"].(map[string]any)["profile_id"].(string)
	r.wantStatus(r.command(pc, "p-jwks", map[string]any{"change_id": "p-jwks", "op": "upsert", "profile": map[string]any{
		"profile_id": "aa-jwks", "issuer": jwksIss.Iss, "audience": jwksIss.Aud, "jwks_url": goodJWKS.URL + "/jwks.json",
		"attribute_mapping": mapping}}, false), 200, "")
	r.wantStatus(r.command(pc, "p-jwks-bad", map[string]any{"change_id": "p-jwks-bad", "op": "upsert", "profile": map[string]any{
		"profile_id": "aa-jwks-bad", "issuer": jwksIss.Iss, "audience": jwksIss.Aud, "jwks_url": badJWKS.URL + "/jwks.json",
		"attribute_mapping": mapping}}, false), 200, "")
	r.wantStatus(r.command(pc, "p-conflict", map[string]any{"change_id": "p-conflict", "op": "upsert", "expected_version": 7, "profile": pemSpec}, false), 409, "version_conflict")
	r.wantStatus(r.command(pc, "p-doomed", map[string]any{"change_id": "p-doomed", "op": "upsert", "profile": map[string]any{
		"profile_id": "aa-doomed", "issuer": "i", "audience": "a", "public_keys": []string{iss.PublicPEM()}, "attribute_mapping": mapping}}, false), 200, "")
	r.wantStatus(r.command(pc, "p-delete", map[string]any{"change_id": "p-delete", "op": "delete", "profile_id": "aa-doomed"}, false), 200, "")
	// Outside the schema on purpose: the worker must refuse them too.
	six := []string{}
	for range 6 {
		six = append(six, workertest.NewIssuer(t, "i", "a").PublicPEM())
	}
	r.wantStatus(r.command(pc, "p-six", map[string]any{"change_id": "p-six", "op": "upsert", "profile": map[string]any{
		"profile_id": "aa-six", "issuer": "i", "audience": "a", "public_keys": six, "attribute_mapping": mapping}}, true), 400, "too_many_pem_files_for_trusted_token_profile")
	r.wantStatus(r.command(pc, "p-colour", map[string]any{"change_id": "p-colour", "op": "upsert", "profile": map[string]any{
		"issuer": "i", "audience": "a", "public_keys": []string{iss.PublicPEM()}, "attribute_mapping": mapping, "colour": "red"}}, true), 400, "invalid_request")
	r.wantStatus(r.command(pc, "p-merge", map[string]any{"change_id": "p-merge", "op": "merge", "profile_id": "aa-pem"}, true), 400, "invalid_request")

	// ---- Users -------------------------------------------------------
	uc := env.Subject("users", "commands")
	ada := map[string]any{"user_id": "aa-ada", "emails": []any{map[string]any{"email": "Ada@Example.com", "verified": true}},
		"name": map[string]any{"first_name": "Ada", "last_name": "Lovelace"}, "external_id": "ext-ada", "trusted_metadata": map[string]any{"team": "analytical engines"}}
	r.wantStatus(r.command(uc, "u-create", map[string]any{"change_id": "u-create", "op": "upsert", "user": ada}, false), 200, "")
	r.wantStatus(r.command(uc, "", map[string]any{"change_id": "u-create", "op": "upsert", "user": ada}, false), 200, "") // user.repeated
	ada["name"] = map[string]any{"first_name": "Ada", "middle_name": "King", "last_name": "Lovelace"}
	r.wantStatus(r.command(uc, "u-update", map[string]any{"change_id": "u-update", "op": "upsert", "expected_version": 1, "user": ada}, false), 200, "")
	r.wantStatus(r.command(uc, "u-dup", map[string]any{"change_id": "u-dup", "op": "upsert", "user": map[string]any{
		"emails": []any{map[string]any{"email": "ADA@example.COM"}}}}, false), 409, "duplicate_email")
	r.wantStatus(r.command(uc, "u-doomed", map[string]any{"change_id": "u-doomed", "op": "upsert", "user": map[string]any{
		"user_id": "aa-doomed", "status": "pending"}}, false), 200, "")
	r.wantStatus(r.command(uc, "u-delete", map[string]any{"change_id": "u-delete", "op": "delete", "user_id": "aa-doomed"}, false), 200, "")
	r.wantStatus(r.command(uc, "u-retired", map[string]any{"change_id": "u-retired", "op": "upsert", "user": map[string]any{
		"user_id": "aa-retired", "status": "retired"}}, true), 400, "invalid_user")

	// ---- Attest ------------------------------------------------------
	ac := env.Subject("attest", "requests")
	attest := func(id string, p map[string]any, invalid bool) map[string]any {
		if id != "" {
			p["request_id"] = id
		}
		return r.command(ac, id, p, invalid)
	}
	r.wantStatus(attest("a-verify", map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil)}, false), 200, "")
	sessionReq := map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", map[string]any{"roles": []string{"admin"}}),
		"session_duration_minutes": 60, "session_custom_claims": map[string]any{"plan": "pro"}}
	started := attest("a-session", sessionReq, false)
	r.wantStatus(started, 200, "")
	sessionToken, _ := started["session_token"].(string)
	r.checkSessionJWT(started["session_jwt"])
	r.wantStatus(attest("a-attach", map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil),
		"session_token": sessionToken, "session_duration_minutes": 120, "session_custom_claims": map[string]any{"plan": nil, "tier": "gold"}}, false), 200, "")
	r.wantStatus(attest("a-attach-jwt", map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil),
		"session_jwt": started["session_jwt"]}, false), 200, "")
	// A repeat (no Nats-Msg-Id, so JetStream keeps it) gets the first
	// outcome, and an attest.repeated event.
	again := r.command(ac, "", sessionReq, false)
	if again["session_token"] != sessionToken {
		t.Errorf("repeated request answered another session: %v", again)
	}
	// Another request reusing the id gets invalid_request and no session;
	// its event is an attest.repeated with different_request.
	thief := r.command(ac, "", map[string]any{"request_id": "a-session", "profile_id": "aa-pem", "token": "x.y.z"}, false)
	r.wantStatus(thief, 400, "invalid_request")
	r.wantStatus(attest("a-replay", map[string]any{"profile_id": "aa-pem", "token": verifiedToken(t, r, "a-verify")}, false), 401, "token_replayed")
	r.wantStatus(attest("a-no-profile", map[string]any{"profile_id": "aa-missing", "token": token(iss, "ada@example.com", nil)}, false), 404, "trusted_token_profile_not_found")
	jit := attest("a-jit", map[string]any{"profile_id": jitProfile, "token": token(jitIss, "grace@example.com", nil), "session_duration_minutes": 10}, false)
	r.wantStatus(jit, 200, "")
	r.wantStatus(attest("a-jwks", map[string]any{"profile_id": "aa-jwks", "token": token(jwksIss, "ada@example.com", nil)}, false), 200, "")
	r.wantStatus(attest("a-jwks-bad", map[string]any{"profile_id": "aa-jwks-bad", "token": token(jwksIss, "ada@example.com", nil)}, false), 503, "jwks_unavailable")
	// Ids the worker makes: the Nats-Msg-Id header, else #seq:<n>.
	if rep := r.command(ac, "a-header-id", map[string]any{"profile_id": "aa-missing", "token": "x.y.z"}, false); rep["request_id"] != "a-header-id" {
		t.Errorf("request_id from the header: %v", rep)
	}
	if rep := r.command(ac, "", map[string]any{"profile_id": "aa-missing", "token": "x.y.z"}, false); !strings.HasPrefix(fmt.Sprint(rep["request_id"]), "#seq:") {
		t.Errorf("request_id from the stream sequence: %v", rep)
	}
	// An application's own subject.
	r.wantStatus(r.command(env.Subject("attest", "requests", "billing"), "a-app",
		map[string]any{"request_id": "a-app", "profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil)}, false), 200, "")
	// Outside the schema on purpose.
	r.wantStatus(r.command(ac, "", []byte("not json at all"), true), 400, "invalid_request")
	r.wantStatus(attest("a-extra", map[string]any{"profile_id": "aa-pem", "token": "x.y.z", "extra": 1}, true), 400, "invalid_request")
	r.wantStatus(r.command(ac, "", map[string]any{"request_id": "has space", "profile_id": "aa-pem", "token": "x.y.z"}, true), 400, "invalid_request")
	r.wantStatus(attest("a-type", map[string]any{"profile_id": 5, "token": "x.y.z"}, true), 400, "invalid_request")
	r.wantStatus(attest("a-both", map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil),
		"session_token": sessionToken, "session_jwt": started["session_jwt"]}, true), 400, "too_many_session_arguments")
	r.wantStatus(attest("a-short", map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil), "session_duration_minutes": 1}, true), 400, "invalid_session_duration_minutes")
	r.wantStatus(attest("a-reserved", map[string]any{"profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil),
		"session_duration_minutes": 5, "session_custom_claims": map[string]any{"sub": "someone"}}, true), 400, "reserved_claims_in_custom_claims")

	// ---- Sessions service --------------------------------------------
	auth := r.service("authenticate", map[string]any{"session_token": sessionToken}, false)
	r.wantStatus(auth, 200, "")
	if auth["session_token"] != sessionToken {
		t.Errorf("authenticate by token does not return it: %v", auth)
	}
	r.checkSessionJWT(auth["session_jwt"])
	byJWT := r.service("authenticate", map[string]any{"session_jwt": auth["session_jwt"]}, false)
	r.wantStatus(byJWT, 200, "")
	if _, ok := byJWT["session_token"]; ok {
		t.Errorf("authenticate by JWT returned the session token")
	}
	r.wantStatus(r.service("authenticate", map[string]any{"session_token": sessionToken, "session_duration_minutes": 600}, false), 200, "")
	r.wantStatus(r.service("authenticate", map[string]any{"session_token": "tat_st_nope"}, false), 404, "session_not_found")
	r.wantStatus(r.service("authenticate", map[string]any{}, true), 400, "invalid_request")
	r.service("jwks", map[string]any{}, false)
	jitSession := jit["session"].(map[string]any)["session_id"]
	// The applications' revoke takes a bearer proof; ids are the
	// operators' (admin.revoke), which takes every form.
	r.wantStatus(r.service("revoke", map[string]any{"session_id": jitSession}, true), 400, "invalid_request")
	r.wantStatus(r.service("revoke", map[string]any{"session_token": jit["session_token"]}, false), 200, "")
	r.wantStatus(r.service("revoke", map[string]any{"session_jwt": jit["session_jwt"]}, false), 200, "")
	r.wantStatus(r.service("revoke", map[string]any{"session_token": "tat_st_nope"}, false), 404, "session_not_found")
	r.wantStatus(r.service("revoke", map[string]any{"session_token": jit["session_token"], "session_jwt": jit["session_jwt"]}, true), 400, "invalid_request")
	r.wantStatus(r.service("admin.revoke", map[string]any{"session_id": jitSession}, false), 200, "")
	r.wantStatus(r.service("admin.revoke", map[string]any{"session_id": jitSession, "session_token": sessionToken}, true), 400, "invalid_request")
	r.checkHTTPJWKS(w.HTTP)

	// ---- Reads service -----------------------------------------------
	r.wantStatus(r.read("profiles.get", map[string]any{"profile_id": "aa-pem"}, false), 200, "")
	r.wantStatus(r.read("profiles.get", map[string]any{"profile_id": "aa-doomed"}, false), 404, "trusted_token_profile_not_found") // deleted
	r.wantStatus(r.read("profiles.get", map[string]any{"profile_id": "aa-missing"}, false), 404, "trusted_token_profile_not_found")
	if n := len(r.readAll("profiles.list", map[string]any{}, "profiles", 2)); n != 4 {
		t.Errorf("profiles.list listed %d profiles, want 4", n)
	}
	r.wantStatus(r.read("profiles.list", map[string]any{}, false), 200, "")
	r.wantStatus(r.read("profiles.list", map[string]any{"limit": 0}, true), 400, "invalid_request")
	r.wantStatus(r.read("profiles.list", map[string]any{"cursor": "not a cursor"}, true), 400, "invalid_request")
	r.wantStatus(r.read("users.get", map[string]any{"user_id": "aa-ada"}, false), 200, "")
	if u := r.read("users.get", map[string]any{"email": "ADA@example.COM"}, false); fmt.Sprint(u["user"].(map[string]any)["user_id"]) != "aa-ada" {
		t.Errorf("users.get by email: %v", u)
	}
	r.wantStatus(r.read("users.get", map[string]any{"user_id": "aa-doomed"}, false), 404, "user_not_found") // deleted
	r.wantStatus(r.read("users.get", map[string]any{"user_id": "aa-ada", "email": "ada@example.com"}, true), 400, "invalid_request")
	r.readAll("users.list", map[string]any{}, "users", 1)
	adaSession := started["session"].(map[string]any)["session_id"].(string)
	r.wantStatus(r.read("sessions.get", map[string]any{"session_id": adaSession}, false), 200, "")
	r.wantStatus(r.read("sessions.get", map[string]any{"session_id": jitSession}, false), 404, "session_not_found") // revoked
	r.wantStatus(r.read("sessions.get", map[string]any{"session_id": "session-" + uuid.NewString()}, false), 404, "session_not_found")
	if n := len(r.readAll("sessions.list", map[string]any{"user_id": "aa-ada"}, "sessions", 1)); n != 1 {
		t.Errorf("sessions.list listed %d sessions of aa-ada, want 1", n)
	}
	r.wantStatus(r.read("sessions.list", map[string]any{"user_id": "aa-nobody"}, false), 404, "user_not_found")
	r.wantStatus(r.read("sessions.list", map[string]any{"user_id": "aa-ada", "colour": "red"}, true), 400, "invalid_request")
	if keys := r.read("keys.list", map[string]any{}, false)["keys"]; len(keys.([]any)) != 1 {
		t.Errorf("keys.list before a rotation: %v", keys)
	}
	r.wantStatus(r.read("keys.list", map[string]any{"all": true}, true), 400, "invalid_request")

	// ---- Session-signing keys ----------------------------------------
	kc := env.Subject("keys", "commands")
	rotated := r.command(kc, "k-rotate", map[string]any{"change_id": "k-rotate", "op": "rotate"}, false)
	r.wantStatus(rotated, 200, "")
	// A repeat rotates nothing: the first outcome, and a keys.repeated.
	if again := r.command(kc, "", map[string]any{"change_id": "k-rotate", "op": "rotate"}, false); fmt.Sprint(again["key"]) != fmt.Sprint(rotated["key"]) {
		t.Errorf("repeated rotate answered %v, first %v", again, rotated)
	}
	// The new key is in its publish window: no second rotation.
	r.wantStatus(r.command(kc, "k-again", map[string]any{"change_id": "k-again", "op": "rotate"}, false), 409, "key_rotation_in_progress")
	r.wantStatus(r.command(kc, "k-spin", map[string]any{"change_id": "k-spin", "op": "spin"}, true), 400, "invalid_request")
	if keys := r.read("keys.list", map[string]any{}, false)["keys"]; len(keys.([]any)) != 2 {
		t.Errorf("keys.list during a rotation: %v", keys)
	}
	if keys := r.service("jwks", map[string]any{}, false)["keys"]; len(keys.([]any)) != 2 {
		t.Errorf("jwks during a rotation (the next key is published before it signs): %v", keys)
	}
	r.checkHTTPJWKS(w.HTTP)

	// ---- Sessions ended by a user change, and revoke by user_id ------
	bob := map[string]any{"user_id": "aa-bob", "emails": []any{map[string]any{"email": "bob@example.com", "verified": true}}}
	r.wantStatus(r.command(uc, "u-bob", map[string]any{"change_id": "u-bob", "op": "upsert", "user": bob}, false), 200, "")
	bobStarted := attest("a-bob", map[string]any{"profile_id": "aa-pem", "token": token(iss, "bob@example.com", nil), "session_duration_minutes": 30}, false)
	r.wantStatus(bobStarted, 200, "")
	bobSession := bobStarted["session"].(map[string]any)["session_id"].(string)
	bob["status"] = "disabled"
	r.wantStatus(r.command(uc, "u-bob-off", map[string]any{"change_id": "u-bob-off", "op": "upsert", "expected_version": 1, "user": bob}, false), 200, "")
	if !r.hasEvent("session.revoked", bobSession) {
		t.Errorf("disabling aa-bob did not revoke %s", bobSession)
	}
	r.wantStatus(r.read("sessions.get", map[string]any{"session_id": bobSession}, false), 404, "session_not_found")
	if list := r.read("sessions.list", map[string]any{"user_id": "aa-bob"}, false); len(list["sessions"].([]any)) != 0 {
		t.Errorf("a disabled user lists sessions: %v", list)
	}
	r.wantStatus(r.service("revoke", map[string]any{"user_id": "aa-ada"}, true), 400, "invalid_request")
	ended := r.service("admin.revoke", map[string]any{"user_id": "aa-ada"}, false)
	r.wantStatus(ended, 200, "")
	if ids := fmt.Sprint(ended["revoked_session_ids"]); ids != "["+adaSession+"]" {
		t.Errorf("revoke by user_id ended %s, want [%s]", ids, adaSession)
	}
	if !r.hasEvent("session.revoked", adaSession) {
		t.Errorf("revoke by user_id published no session.revoked for %s", adaSession)
	}
	if again := r.service("admin.revoke", map[string]any{"user_id": "aa-ada"}, false); fmt.Sprint(again["revoked_session_ids"]) != "[]" {
		t.Errorf("revoke by user_id again: %v", again)
	}
	r.wantStatus(r.service("admin.revoke", map[string]any{"user_id": "aa-nobody"}, false), 404, "user_not_found")

	// ---- Replies the worker refuses: decided, audited, not sent ------
	refusedAttest := map[string]any{"request_id": "a-refused", "profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil)}
	r.refusedReply(ac, refusedAttest)
	if d := r.waitEventData("attest.verified", "request_id", "a-refused"); d["reply_refused"] != true {
		t.Errorf("attest with a refused reply: event data %v, want reply_refused", d)
	}
	r.refusedReply(ac, refusedAttest) // a repeat: its attest.repeated says so too
	if d := r.waitEventData("attest.repeated", "request_id", "a-refused"); d["reply_refused"] != true {
		t.Errorf("repeated attest with a refused reply: event data %v, want reply_refused", d)
	}
	r.refusedReply(pc, map[string]any{"change_id": "p-refused", "op": "delete", "profile_id": "aa-missing"})
	if d := r.waitEventData("profile.rejected", "change_id", "p-refused"); d["reply_refused"] != true {
		t.Errorf("profile command with a refused reply: event data %v, want reply_refused", d)
	}
	r.refusedReply(uc, map[string]any{"change_id": "u-refused", "op": "delete", "user_id": "aa-nobody"})
	if d := r.waitEventData("user.rejected", "change_id", "u-refused"); d["reply_refused"] != true {
		t.Errorf("user command with a refused reply: event data %v, want reply_refused", d)
	}

	// ---- An event delivered as a command: dropped, dead-lettered -----
	asEvent := nats.Header{}
	asEvent.Set(worker.SignatureHeader, "v1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	r.send(ac, asEvent, map[string]any{"request_id": "a-as-event", "profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil)}, true)
	r.waitStream("TAT_DEADLETTER", 1, time.Minute)

	// ---- A dead letter: the store is down past TAT_MAX_DELIVER -------
	ferret.stop()
	dead := r.publish(ac, "a-dead", map[string]any{"request_id": "a-dead", "profile_id": "aa-pem", "token": token(iss, "ada@example.com", nil)}, false)
	r.waitStream("TAT_DEADLETTER", 2, 2*time.Minute)
	ferret.start()
	rep = r.await(ac, dead, 2*time.Minute)
	r.wantStatus(rep, 500, "internal_server_error")

	// ---- A scheduled rotation: the worker's clock passes the schedule -
	clockAhead.Store(int64(worker.Defaults().SessionKeyRotation + time.Hour))
	deadline := time.Now().Add(30 * time.Second)
	for !r.hasScheduledRotation() {
		if time.Now().After(deadline) {
			t.Fatal("no tat.keys.rotated with trigger schedule 30s after the schedule came due")
		}
		time.Sleep(200 * time.Millisecond)
	}

	r.finish()
}

// hasEvent reports whether the events stream holds an event of type
// tat.<typ> about subject.
func (r *contractRun) hasEvent(typ, subject string) bool {
	for _, m := range r.streamMsgs("TAT_EVENTS") {
		var e struct {
			Subject string `json:"subject"`
		}
		if m.Subject == r.env.Prefix+".events."+typ && json.Unmarshal(m.Data, &e) == nil && e.Subject == subject {
			return true
		}
	}
	return false
}

// hasScheduledRotation reports whether the events stream holds a
// tat.keys.rotated made by the schedule.
func (r *contractRun) hasScheduledRotation() bool {
	for _, m := range r.streamMsgs("TAT_EVENTS") {
		var e struct {
			Data struct {
				Trigger string `json:"trigger"`
			} `json:"data"`
		}
		if m.Subject == r.env.Prefix+".events.keys.rotated" && json.Unmarshal(m.Data, &e) == nil && e.Data.Trigger == "schedule" {
			return true
		}
	}
	return false
}

// verifiedToken is the token an earlier request was accepted with: the
// test keeps every payload it sent.
func verifiedToken(t *testing.T, r *contractRun, requestID string) string {
	t.Helper()
	for _, p := range r.sent {
		var v struct {
			RequestID string `json:"request_id"`
			Token     string `json:"token"`
		}
		if json.Unmarshal(p, &v) == nil && v.RequestID == requestID {
			return v.Token
		}
	}
	t.Fatalf("no request %s was sent", requestID)
	return ""
}

// ---- The document ------------------------------------------------------

const asyncAPIURL = "file:///docs/asyncapi.json"

// asyncAPI is docs/asyncapi.yaml, as JSON, with a compiler for the schemas
// at any JSON pointer in it.
type asyncAPI struct {
	t        *testing.T
	doc      map[string]any
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
	prefix   string
}

func loadAsyncAPI(t *testing.T, path string) *asyncAPI {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatalf("%s is not YAML: %v", path, err)
	}
	// YAML to JSON and back through the validator's own decoder, so that
	// numbers are json.Number as it expects.
	js, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("%s is not JSON-compatible: %v", path, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	a := &asyncAPI{t: t, doc: doc.(map[string]any), compiled: map[string]*jsonschema.Schema{}, prefix: "tat"}
	if v := a.doc["asyncapi"]; v != "3.0.0" {
		t.Fatalf("asyncapi version %v, want 3.0.0", v)
	}
	a.compiler = jsonschema.NewCompiler()
	// AsyncAPI's Schema Object is a superset of draft-07: validate with
	// draft-07 semantics, formats asserted (date-time).
	a.compiler.DefaultDraft(jsonschema.Draft7)
	a.compiler.AssertFormat()
	if err := a.compiler.AddResource(asyncAPIURL, a.doc); err != nil {
		t.Fatal(err)
	}
	// Every message's payload and headers compile, and every channel with
	// an address has at least one message.
	for key := range a.obj("/channels") {
		msgs := a.channelMessages(key)
		if len(msgs) == 0 {
			t.Errorf("channel %s has no message", key)
		}
		for _, ptr := range msgs {
			a.schema(ptr + "/payload")
			if _, ok := a.obj(ptr)["headers"]; ok {
				a.schema(ptr + "/headers")
			}
		}
	}
	return a
}

// node returns the value at a JSON pointer ("/a/b"), following a "$ref"
// found there.
func (a *asyncAPI) node(ptr string) (any, string) {
	var cur any = a.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			a.t.Fatalf("%s: not an object at %q", ptr, tok)
		}
		cur = m[tok]
	}
	if m, ok := cur.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			return a.node(strings.TrimPrefix(ref, "#"))
		}
	}
	return cur, ptr
}

func (a *asyncAPI) obj(ptr string) map[string]any {
	v, _ := a.node(ptr)
	m, _ := v.(map[string]any)
	return m
}

// schema compiles the schema at a JSON pointer of the document.
func (a *asyncAPI) schema(ptr string) *jsonschema.Schema {
	if s, ok := a.compiled[ptr]; ok {
		return s
	}
	s, err := a.compiler.Compile(asyncAPIURL + "#" + ptr)
	if err != nil {
		a.t.Fatalf("schema %s does not compile: %v", ptr, err)
	}
	a.compiled[ptr] = s
	return s
}

// channelMessages returns the pointers of a channel's messages (in
// components/messages).
func (a *asyncAPI) channelMessages(channel string) []string {
	var out []string
	msgs, _ := a.obj("/channels/" + channel)["messages"].(map[string]any)
	for _, m := range msgs {
		ref, _ := m.(map[string]any)["$ref"].(string)
		out = append(out, strings.TrimPrefix(ref, "#"))
	}
	sort.Strings(out)
	return out
}

// channelFor finds the one channel whose address matches a concrete
// subject.
func (a *asyncAPI) channelFor(subject string) (string, error) {
	var found []string
	for key, ch := range a.obj("/channels") {
		addr, _ := ch.(map[string]any)["address"].(string)
		if addr == "" {
			continue
		}
		if a.addressPattern(key, addr).MatchString(subject) {
			found = append(found, key)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no channel of docs/asyncapi.yaml has the address %s", subject)
	case 1:
		return found[0], nil
	}
	sort.Strings(found)
	return "", fmt.Errorf("subject %s matches several channels: %v", subject, found)
}

var addressParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

func (a *asyncAPI) addressPattern(channel, addr string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range addressParam.FindAllStringSubmatchIndex(addr, -1) {
		b.WriteString(regexp.QuoteMeta(addr[last:m[0]]))
		name := addr[m[2]:m[3]]
		param := a.obj("/channels/" + channel + "/parameters/" + name)
		if param == nil {
			a.t.Fatalf("channel %s: address parameter %s is not declared", channel, name)
		}
		switch enum, _ := param["enum"].([]any); {
		case name == "prefix":
			b.WriteString(regexp.QuoteMeta(a.prefix))
		case len(enum) > 0:
			alts := make([]string, len(enum))
			for i, e := range enum {
				alts[i] = regexp.QuoteMeta(fmt.Sprint(e))
			}
			b.WriteString("(?:" + strings.Join(alts, "|") + ")")
		default:
			b.WriteString(`[^.\s*>]+(?:\.[^.\s*>]+)*`)
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(addr[last:]) + "$")
	return regexp.MustCompile(b.String())
}

// replyChannel returns the reply channel of the receive operation on a
// channel.
func (a *asyncAPI) replyChannel(channel string) string {
	var found []string
	for key, op := range a.obj("/operations") {
		o := op.(map[string]any)
		ref, _ := o["channel"].(map[string]any)["$ref"].(string)
		if ref != "#/channels/"+channel || o["action"] != "receive" {
			continue
		}
		reply, _ := o["reply"].(map[string]any)
		rc, _ := reply["channel"].(map[string]any)["$ref"].(string)
		if rc == "" {
			a.t.Fatalf("operation %s has no reply channel", key)
		}
		found = append(found, strings.TrimPrefix(rc, "#/channels/"))
	}
	if len(found) != 1 {
		a.t.Fatalf("channel %s: want one receive operation with a reply, found %v", channel, found)
	}
	return found[0]
}

// validate checks a payload (and the headers, when the message names any)
// against the messages of a channel: it must match one of them.
func (a *asyncAPI) validate(channel string, headers map[string]any, payload any) error {
	var errs []error
	for _, ptr := range a.channelMessages(channel) {
		msg := a.obj(ptr)
		var err error
		if _, ok := msg["headers"]; ok && headers != nil {
			if herr := a.schema(ptr + "/headers").Validate(headers); herr != nil {
				err = fmt.Errorf("headers: %w", herr)
			}
		}
		if err == nil {
			err = a.schema(ptr + "/payload").Validate(payload)
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ptr, err))
	}
	return errors.Join(errs...)
}

// ---- The run -----------------------------------------------------------

// contractRun sends requests to the worker and records what it sees.
type contractRun struct {
	t    *testing.T
	env  *workertest.Env
	spec *asyncAPI

	mu      sync.Mutex
	wire    []*nats.Msg // every message under the prefix
	sub     *nats.Subscription
	invalid map[string]bool // subject + payload of requests sent outside the schema on purpose
	sent    [][]byte
	seen    map[string]int // channel -> messages validated on it
}

func newContractRun(t *testing.T, env *workertest.Env, spec *asyncAPI) *contractRun {
	r := &contractRun{t: t, env: env, spec: spec, invalid: map[string]bool{}, seen: map[string]int{}}
	nc := env.Connect()
	sub, err := nc.Subscribe(env.Prefix+".>", func(m *nats.Msg) {
		r.mu.Lock()
		r.wire = append(r.wire, m)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r.sub = sub
	return r
}

func body(payload any) []byte {
	switch p := payload.(type) {
	case []byte:
		return p
	case string:
		return []byte(p)
	}
	b, _ := json.Marshal(payload)
	return b
}

// pending is a published command waiting for its reply.
type pending struct {
	sub *nats.Subscription
}

// publish sends a command with JetStream, with a Tat-Reply-To inbox and,
// when msgID is set, a Nats-Msg-Id.
func (r *contractRun) publish(subject, msgID string, payload any, outsideSchema bool) pending {
	r.t.Helper()
	b := body(payload)
	r.mu.Lock()
	r.sent = append(r.sent, b)
	if outsideSchema {
		r.invalid[subject+" "+string(b)] = true
	}
	r.mu.Unlock()
	inbox := nats.NewInbox()
	sub, err := r.env.NC.SubscribeSync(inbox)
	if err != nil {
		r.t.Fatal(err)
	}
	m := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
	m.Header.Set(worker.ReplyHeader, inbox)
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.env.JS.PublishMsg(ctx, m); err != nil {
		r.t.Fatalf("publish %s: %v", subject, err)
	}
	return pending{sub: sub}
}

// send publishes a command with JetStream with the given headers and no
// reply inbox of the test's: for commands whose reply the worker refuses,
// and for a message it drops.
func (r *contractRun) send(subject string, header nats.Header, payload any, outsideSchema bool) {
	r.t.Helper()
	b := body(payload)
	r.mu.Lock()
	r.sent = append(r.sent, b)
	if outsideSchema {
		r.invalid[subject+" "+string(b)] = true
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.env.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: b, Header: header}); err != nil {
		r.t.Fatalf("publish %s: %v", subject, err)
	}
}

// refusedReply publishes a command whose Tat-Reply-To is outside
// TAT_REPLY_PREFIXES: the worker decides it and replies nowhere.
func (r *contractRun) refusedReply(subject string, payload any) {
	r.t.Helper()
	h := nats.Header{}
	h.Set(worker.ReplyHeader, "elsewhere."+uuid.NewString())
	r.send(subject, h, payload, false)
}

// waitEventData waits for an event on <prefix>.events.<typ> whose data has
// member key equal to value, and returns its data.
func (r *contractRun) waitEventData(typ, key string, value any) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range r.streamMsgs("TAT_EVENTS") {
			var e struct {
				Data map[string]any `json:"data"`
			}
			if m.Subject == r.env.Prefix+".events."+typ && json.Unmarshal(m.Data, &e) == nil && fmt.Sprint(e.Data[key]) == fmt.Sprint(value) {
				return e.Data
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s event with %s %v", typ, key, value)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// await takes the reply of a published command and checks it against the
// reply of the command channel's operation.
func (r *contractRun) await(subject string, p pending, timeout time.Duration) map[string]any {
	r.t.Helper()
	defer p.sub.Unsubscribe()
	m, err := p.sub.NextMsg(timeout)
	if err != nil {
		r.t.Fatalf("no reply to a command on %s: %v", subject, err)
	}
	ch, err := r.spec.channelFor(subject)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.checkOutput(r.spec.replyChannel(ch), nil, m.Data, "reply on "+subject)
}

func (r *contractRun) command(subject, msgID string, payload any, outsideSchema bool) map[string]any {
	r.t.Helper()
	return r.await(subject, r.publish(subject, msgID, payload, outsideSchema), 30*time.Second)
}

// service calls an endpoint of the sessions service.
func (r *contractRun) service(endpoint string, payload any, outsideSchema bool) map[string]any {
	r.t.Helper()
	return r.request(r.env.Subject("sessions", endpoint), payload, outsideSchema)
}

// read calls an endpoint of the reads service (path: "profiles.get", ...).
func (r *contractRun) read(path string, payload any, outsideSchema bool) map[string]any {
	r.t.Helper()
	return r.request(r.env.Subject("reads", path), payload, outsideSchema)
}

// readAll follows a list endpoint of the reads service page by page, limit
// items at a time, and returns every item of the member list. It fails the
// test when the pages do not end, or when more than limit items came back
// in one page.
func (r *contractRun) readAll(path string, req map[string]any, list string, limit int) []any {
	r.t.Helper()
	var all []any
	cursor := ""
	for page := 0; page < 100; page++ {
		p := map[string]any{"limit": limit}
		for k, v := range req {
			p[k] = v
		}
		if cursor != "" {
			p["cursor"] = cursor
		}
		rep := r.read(path, p, false)
		r.wantStatus(rep, 200, "")
		items, _ := rep[list].([]any)
		if len(items) > limit {
			r.t.Errorf("%s returned %d items with limit %d", path, len(items), limit)
		}
		all = append(all, items...)
		if cursor, _ = rep["next_cursor"].(string); cursor == "" {
			return all
		}
	}
	r.t.Fatalf("%s: the pages do not end", path)
	return nil
}

// request sends a core-NATS request to a service endpoint and checks the
// reply against the reply of the endpoint channel's operation.
func (r *contractRun) request(subject string, payload any, outsideSchema bool) map[string]any {
	r.t.Helper()
	b := body(payload)
	if outsideSchema {
		r.mu.Lock()
		r.invalid[subject+" "+string(b)] = true
		r.mu.Unlock()
	}
	m, err := r.env.NC.Request(subject, b, 10*time.Second)
	if err != nil {
		r.t.Fatalf("%s: %v", subject, err)
	}
	ch, err := r.spec.channelFor(subject)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.checkOutput(r.spec.replyChannel(ch), nil, m.Data, "reply on "+subject)
}

// checkOutput validates something the worker sent on a channel, then
// checks that the schema refuses it with one undocumented member added to
// any of its objects (the free-form custom_claims and trusted_metadata
// aside): the schema must be strict enough for a new field of the worker
// to fail this test.
func (r *contractRun) checkOutput(channel string, headers map[string]any, data []byte, what string) map[string]any {
	r.t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		r.t.Errorf("%s is not JSON: %v: %s", what, err, data)
		return nil
	}
	r.mu.Lock()
	r.seen[channel]++
	r.mu.Unlock()
	if err := r.spec.validate(channel, headers, v); err != nil {
		r.t.Errorf("%s does not match channel %s of docs/asyncapi.yaml: %v\n%s", what, channel, err, data)
	} else {
		for _, path := range objectPaths(v, nil) {
			probe, _ := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			node := probe
			for _, k := range path {
				if list, ok := node.([]any); ok {
					var i int
					_, _ = fmt.Sscan(k, &i)
					node = list[i]
					continue
				}
				node = node.(map[string]any)[k]
			}
			node.(map[string]any)["x_undocumented"] = true
			if r.spec.validate(channel, headers, probe) == nil {
				r.t.Errorf("channel %s admits an undocumented member in /%s of %s: add additionalProperties: false", channel, strings.Join(path, "/"), what)
			}
		}
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

// freeForm are the members whose objects hold anything by design.
var freeForm = map[string]bool{"custom_claims": true, "trusted_metadata": true}

// objectPaths lists the paths (by member names; arrays by index) of every
// JSON object in v, v itself first.
func objectPaths(v any, path []string) [][]string {
	var out [][]string
	switch x := v.(type) {
	case map[string]any:
		out = append(out, append([]string(nil), path...))
		for k, c := range x {
			if !freeForm[k] {
				out = append(out, objectPaths(c, append(path, k))...)
			}
		}
	case []any:
		for i, c := range x {
			out = append(out, objectPaths(c, append(path, fmt.Sprint(i)))...)
		}
	}
	return out
}

func (r *contractRun) wantStatus(rep map[string]any, status int, errType string) {
	r.t.Helper()
	got, _ := rep["status_code"].(float64)
	gotType, hasType := rep["error_type"]
	if int(got) != status || hasType != (errType != "") || (hasType && gotType != errType) {
		r.t.Errorf("reply %v, want status_code %d error_type %q", rep, status, errType)
	}
}

// checkSessionJWT validates a session JWT's header and claims against
// SessionJWTHeader and SessionJWTClaims.
func (r *contractRun) checkSessionJWT(v any) {
	r.t.Helper()
	jwt, _ := v.(string)
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		r.t.Errorf("session_jwt %q is not a compact JWS", jwt)
		return
	}
	for i, name := range []string{"SessionJWTHeader", "SessionJWTClaims"} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			r.t.Errorf("session_jwt part %d: %v", i, err)
			continue
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			r.t.Errorf("session_jwt part %d is not JSON: %v", i, err)
			continue
		}
		if err := r.spec.schema("/components/schemas/" + name).Validate(doc); err != nil {
			r.t.Errorf("session_jwt does not match %s: %v\n%s", name, err, raw)
		}
		if m, ok := doc.(map[string]any); ok && name == "SessionJWTClaims" {
			exp, _ := m["exp"].(json.Number).Int64()
			iat, _ := m["iat"].(json.Number).Int64()
			if exp-iat != 300 {
				r.t.Errorf("session_jwt lives %ds, the document says 300", exp-iat)
			}
		}
	}
}

// checkHTTPJWKS validates GET /.well-known/jwks.json as SessionJWKSet.
func (r *contractRun) checkHTTPJWKS(addr string) {
	r.t.Helper()
	res, err := http.Get("http://" + addr + "/.well-known/jwks.json")
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err == nil {
		err = r.spec.schema("/components/schemas/SessionJWKSet").Validate(doc)
	}
	if err != nil {
		r.t.Errorf("/.well-known/jwks.json does not match SessionJWKSet: %v\n%s", err, raw)
	}
}

// streamMsgs returns every message of a stream.
func (r *contractRun) streamMsgs(name string) []*jetstream.RawStreamMsg {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := r.env.JS.Stream(ctx, name)
	if err != nil {
		r.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func (r *contractRun) waitStream(name string, n int, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(r.streamMsgs(name)) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("stream %s has fewer than %d messages after %s", name, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func headerMap(h nats.Header) map[string]any {
	out := map[string]any{}
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// finish validates everything captured and checks the coverage.
func (r *contractRun) finish() {
	t := r.t
	t.Helper()
	// Every event type of the document, in the stream (jwks events come
	// from a background fetch).
	wantTypes := 0
	for _, ch := range r.spec.obj("/channels") {
		if addr, _ := ch.(map[string]any)["address"].(string); strings.HasPrefix(addr, "{prefix}.events.") {
			wantTypes++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var events []*jetstream.RawStreamMsg
	for {
		events = r.streamMsgs("TAT_EVENTS")
		types := map[string]bool{}
		for _, e := range events {
			types[e.Subject] = true
		}
		if len(types) >= wantTypes || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, e := range events {
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(e.Data, &env)
		ch, err := r.spec.channelFor(e.Subject)
		if err != nil {
			t.Errorf("event type %q (subject %s) has no schema: %v", env.Type, e.Subject, err)
			continue
		}
		if want := r.env.Prefix + ".events." + strings.TrimPrefix(env.Type, "tat."); e.Subject != want {
			t.Errorf("event of type %s on %s, the contract says %s", env.Type, e.Subject, want)
		}
		r.checkOutput(ch, headerMap(e.Header), e.Data, "event "+env.Type+" (stream seq "+fmt.Sprint(e.Sequence)+")")
	}
	for _, d := range r.streamMsgs("TAT_DEADLETTER") {
		ch, err := r.spec.channelFor(d.Subject)
		if err != nil {
			t.Errorf("dead letter: %v", err)
			continue
		}
		r.checkOutput(ch, headerMap(d.Header), d.Data, "dead letter on "+d.Subject)
	}

	// Everything seen on the wire under the prefix.
	if err := r.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.sub.Dropped(); n > 0 {
		t.Fatalf("the wire capture dropped %d messages", n)
	}
	r.mu.Lock()
	wire := append([]*nats.Msg(nil), r.wire...)
	r.mu.Unlock()
	onWire := map[string]int{}
	for _, m := range wire {
		ch, err := r.spec.channelFor(m.Subject)
		if err != nil {
			t.Errorf("on the wire: %v", err)
			continue
		}
		onWire[ch]++
		what := "message on " + m.Subject
		if r.invalid[m.Subject+" "+string(m.Data)] {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Data))
			var h map[string]any
			if m.Header != nil {
				h = headerMap(m.Header)
			}
			if err == nil && r.spec.validate(ch, h, v) == nil {
				t.Errorf("%s was sent outside the contract on purpose (and refused by the worker), but channel %s admits it:\n%s", what, ch, m.Data)
			}
			r.mu.Lock()
			r.seen[ch]++
			r.mu.Unlock()
			continue
		}
		if strings.HasPrefix(m.Subject, r.env.Prefix+".events.") || strings.HasPrefix(m.Subject, r.env.Prefix+".deadletter.") {
			r.checkOutput(ch, headerMap(m.Header), m.Data, what)
			continue
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Data))
		if err != nil {
			t.Errorf("%s is not JSON: %s", what, m.Data)
			continue
		}
		var h map[string]any
		if m.Header != nil {
			h = headerMap(m.Header)
		}
		if err := r.spec.validate(ch, h, v); err != nil {
			t.Errorf("%s, which the worker accepted, does not match channel %s: %v\n%s", what, ch, err, m.Data)
		}
		r.mu.Lock()
		r.seen[ch]++
		r.mu.Unlock()
	}

	// Coverage: every channel of the document was seen, so none is stale.
	var unseen []string
	for key := range r.spec.obj("/channels") {
		if r.seen[key] == 0 {
			unseen = append(unseen, key)
		}
	}
	sort.Strings(unseen)
	if len(unseen) > 0 {
		t.Errorf("channels of docs/asyncapi.yaml never seen in this run (stale, or the test misses a case): %v", unseen)
	}
	t.Logf("validated %d wire messages, %d events, %d channels", len(wire), len(events), len(r.seen))
}

// ---- Servers -------------------------------------------------------------

// contractFerret is an in-process FerretDB that can be stopped and started
// again on the same address and files (for the dead-letter case).
type contractFerret struct {
	t    *testing.T
	addr string
	dir  string
	mu   sync.Mutex
	fe   *embedded.Ferret
}

func (f *contractFerret) start() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		fe, err := embedded.StartFerret(f.addr, f.dir)
		if err == nil {
			f.fe = fe
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("start ferretdb on %s: %v", f.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *contractFerret) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fe != nil {
		f.fe.Stop()
		f.fe = nil
	}
}

// newContractEnv is workertest.NewEnv with a FerretDB the test can stop.
func newContractEnv(t *testing.T) (*workertest.Env, *contractFerret) {
	t.Helper()
	dir := t.TempDir()
	ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	fe := &contractFerret{t: t, addr: addr, dir: filepath.Join(dir, "ferret")}
	fe.start()
	t.Cleanup(fe.stop)
	env := &workertest.Env{T: t, NATS: ns, NATSURL: ns.URL(), MongoURI: "mongodb://" + addr + "/", Database: "tat", Prefix: "tat",
		MasterKey: make([]byte, 32)}
	_, _ = rand.Read(env.MasterKey)
	env.NC = env.Connect()
	env.JS, _ = jetstream.New(env.NC)
	return env, fe
}
