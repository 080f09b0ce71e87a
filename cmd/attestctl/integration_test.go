package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tat-worker/attest/client"
	"github.com/tat-worker/attest/worker/audit"
	"github.com/tat-worker/attest/worker/workertest"
)

// harness runs attestctl against a real worker.
type harness struct {
	t   *testing.T
	url string
	n   *normalizer
}

// ctl runs attestctl with -nats and checks its exit status; it returns
// stdout and stderr.
func (h *harness) ctl(wantCode int, args ...string) (string, string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-nats", h.url}, args...), &out, &errb)
	if code != wantCode {
		h.t.Fatalf("attestctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// golden runs a command that must succeed and compares its output with
// testdata/name.golden.
func (h *harness) golden(name string, args ...string) string {
	h.t.Helper()
	out, _ := h.ctl(0, args...)
	golden(h.t, h.n, name, out)
	return out
}

// json runs a command with -json that must succeed and decodes its output.
func (h *harness) json(v any, args ...string) {
	h.t.Helper()
	out, _ := h.ctl(0, append(args, "-json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("attestctl %s -json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// refused runs a command the worker must refuse with errorType: one line
// "error_type: message" on stderr, nothing on stdout, exit 1.
func (h *harness) refused(errorType string, args ...string) {
	h.t.Helper()
	out, errb := h.ctl(1, args...)
	if out != "" || !strings.HasPrefix(errb, errorType+": ") || strings.Count(errb, "\n") != 1 {
		h.t.Errorf("attestctl %s: stdout %q, stderr %q; want one line %q", strings.Join(args, " "), out, errb, errorType+": ...")
	}
}

// TestCommandsAgainstAWorker runs every command that talks to the worker
// against a real one (NATS with JetStream, FerretDB): the tables and
// "field: value" views against testdata/*.golden (times, session ids and
// secrets normalised; every other id fixed by the fixtures), the -json
// output decoded and checked, and refusals as one "error_type: message"
// line.
func TestCommandsAgainstAWorker(t *testing.T) {
	env := workertest.NewEnv(t)
	env.StartWorker(nil, nil)
	root, _ := filepath.Abs("../..")
	testdata := testdataDir
	t.Chdir(t.TempDir())
	h := &harness{t: t, url: env.NATSURL, n: newNormalizer()}
	const devProfile, partnerProfile = "trusted-auth-token-profile-dev", "trusted-auth-token-profile-partner"

	// Keys, profiles, users.
	out, _ := h.ctl(0, "keygen", "-out", "dev")
	if fieldOf(t, out, "public_key_file") != "dev.pub.pem (for a profile: -pem dev.pub.pem)" || fieldOf(t, out, "alg") != "ES256" {
		t.Errorf("keygen:\n%s", out)
	}
	h.ctl(0, "keygen", "-out", "partner", "-type", "rsa")
	h.golden("profile_apply", "profile", "apply", "-f", filepath.Join(root, "examples/profile.json"), "-pem", "dev.pub.pem")
	var pr client.ProfileResult
	h.json(&pr, "profile", "apply", "-f", filepath.Join(testdata, "partner-profile.json"), "-pem", "partner.pub.pem", "-pem", "dev.pub.pem", "-change-id", "partner-1")
	if pr.StatusCode != 200 || pr.ChangeID != "partner-1" || pr.Profile.ProfileID != partnerProfile || len(pr.Profile.PublicKeys) != 2 || pr.Profile.Version != 1 {
		t.Errorf("profile apply -json: %+v", pr)
	}
	h.golden("user_apply", "user", "apply", "-f", filepath.Join(root, "examples/user.json"))
	var ur client.UserResult
	h.json(&ur, "user", "apply", "-f", filepath.Join(testdata, "grace.json"))
	if ur.User.UserID != "user-grace" || len(ur.User.Emails) != 2 || compactJSON(ur.User.TrustedMetadata) != `{"department":"navy"}` {
		t.Errorf("user apply -json: %+v", ur)
	}

	// Profile reads; what get -json prints applies back as it is.
	h.golden("profile_list", "profile", "list")
	var pl struct{ Profiles []client.Profile }
	h.json(&pl, "profile", "list")
	if len(pl.Profiles) != 2 || pl.Profiles[0].ProfileID != devProfile || pl.Profiles[1].ProfileID != partnerProfile {
		t.Errorf("profile list -json: %+v", pl)
	}
	h.golden("profile_get", "profile", "get", "-id", partnerProfile)
	got, _ := h.ctl(0, "profile", "get", "-id", partnerProfile, "-json")
	if err := os.WriteFile("partner-got.json", []byte(got), 0o600); err != nil {
		t.Fatal(err)
	}
	h.json(&pr, "profile", "apply", "-f", "partner-got.json", "-expected-version", "1")
	if pr.Profile.Version != 2 || len(pr.Profile.PublicKeys) != 2 || pr.Profile.MaxTokenLifetimeSeconds != 900 {
		t.Errorf("get -json | apply: %+v", pr.Profile)
	}
	h.refused("version_conflict", "profile", "apply", "-f", "partner-got.json", "-expected-version", "1")
	h.refused("trusted_token_profile_not_found", "profile", "get", "-id", "trusted-auth-token-profile-nobody")

	// User reads, a page at a time or all.
	h.golden("user_list", "user", "list")
	page, hint := h.ctl(0, "user", "list", "-limit", "1")
	golden(t, h.n, "user_list_page", page)
	if !strings.HasPrefix(hint, "more users: attestctl user list -limit 1 -cursor ") {
		t.Errorf("no hint of the next page: %q", hint)
	}
	var ul struct {
		Users      []client.User `json:"users"`
		NextCursor *string       `json:"next_cursor"`
	}
	h.json(&ul, "user", "list", "-limit", "1", "-all")
	if len(ul.Users) != 2 || ul.NextCursor == nil || *ul.NextCursor != "" {
		t.Errorf("user list -all -json: %+v", ul)
	}
	h.json(&ul, "user", "list", "-limit", "1")
	if len(ul.Users) != 1 || ul.NextCursor == nil || *ul.NextCursor == "" {
		t.Fatalf("user list -limit 1 -json: %+v", ul)
	}
	h.json(&ul, "user", "list", "-limit", "1", "-cursor", *ul.NextCursor)
	if len(ul.Users) != 1 || ul.Users[0].UserID != "user-grace" {
		t.Errorf("user list -cursor: %+v", ul)
	}
	h.golden("user_get", "user", "get", "-email", "GRACE@example.com")
	var u client.User
	h.json(&u, "user", "get", "-id", "user-ada")
	if u.Name.LastName != "Lovelace" || u.Status != "active" {
		t.Errorf("user get -json: %+v", u)
	}
	h.refused("user_not_found", "user", "get", "-email", "nobody@example.com")

	// Attest: the summary and the secrets, in clear, for the caller.
	mintFor := func(iss, jti string) string {
		tok, _ := h.ctl(0, "token", "mint", "-key", "dev.key.pem", "-iss", iss, "-aud", "my-app",
			"-email", "ada@example.com", "-roles", "admin", "-jti", jti)
		return strings.TrimSpace(tok)
	}
	mint := func(jti string) string { return mintFor("https://dev.example.com/", jti) }
	tok1 := mint("tok-1")
	out = h.golden("attest", "attest", "-profile", devProfile, "-token", tok1, "-duration", "60", "-request-id", "req-1")
	first := fieldOf(t, out, "session_id")
	sessionToken, sessionJWT := fieldOf(t, out, "session_token"), fieldOf(t, out, "session_jwt")
	if !strings.HasPrefix(sessionToken, "tat_st_") || strings.Count(sessionJWT, ".") != 2 {
		t.Fatalf("attest does not show the secrets:\n%s", out)
	}
	h.refused("token_replayed", "attest", "-profile", devProfile, "-token", tok1, "-duration", "60")
	out, _ = h.ctl(1, "attest", "-profile", devProfile, "-token", tok1, "-duration", "60", "-json")
	var refusal map[string]any
	if json.Unmarshal([]byte(out), &refusal) != nil || refusal["error_type"] != "token_replayed" || refusal["status_code"] != float64(401) {
		t.Errorf("a refusal with -json: %s", out)
	}
	var ar revealedAttest
	h.json(&ar, "attest", "-profile", devProfile, "-token", mint("tok-2"), "-duration", "30", "-request-id", "req-2")
	if ar.StatusCode != 200 || ar.RequestID != "req-2" || ar.UserID != "user-ada" || ar.Session == nil ||
		!strings.HasPrefix(ar.SessionToken, "tat_st_") || strings.Count(ar.SessionJWT, ".") != 2 {
		t.Fatalf("attest -json: %+v", ar)
	}
	second := ar.Session.SessionID
	// A second factor, from the partner's profile, on the same session.
	out, _ = h.ctl(0, "attest", "-profile", partnerProfile, "-token", mintFor("https://sso.partner.example/", "tok-3"), "-session-token", ar.SessionToken)
	if fieldOf(t, out, "session_id") != second || fieldOf(t, out, "factors") != "trusted_auth_token x2" {
		t.Errorf("a factor added to a session:\n%s", out)
	}

	// Sessions.
	var sl struct{ Sessions []client.Session }
	h.json(&sl, "sessions", "list", "-user", "user-ada")
	if len(sl.Sessions) != 2 {
		t.Errorf("sessions list -json: %+v", sl)
	}
	h.golden("sessions_get", "sessions", "get", "-id", first)
	out = h.golden("sessions_authenticate", "sessions", "authenticate", "-session-token", sessionToken)
	if fieldOf(t, out, "session_token") != sessionToken {
		t.Errorf("authenticate does not give back the session_token sent")
	}
	out, _ = h.ctl(0, "sessions", "authenticate", "-jwt", sessionJWT)
	if strings.Contains(out, "session_token:") || fieldOf(t, out, "session_id") != first {
		t.Errorf("authenticate with a JWT:\n%s", out)
	}
	h.golden("sessions_revoke", "sessions", "revoke", "-session-token", sessionToken)
	h.refused("session_not_found", "sessions", "get", "-id", first)
	h.golden("sessions_list", "sessions", "list", "-user", "user-ada")
	h.golden("sessions_revoke_user", "sessions", "revoke", "-user", "user-ada")
	var rr client.RevokeResult
	h.json(&rr, "sessions", "revoke", "-user", "user-ada")
	if rr.StatusCode != 200 || rr.RevokedSessionIDs == nil || len(rr.RevokedSessionIDs) != 0 {
		t.Errorf("revoke -user again: %+v", rr)
	}
	if out, _ := h.ctl(0, "sessions", "revoke", "-user", "user-ada"); out != "user user-ada has no active session to revoke\n" {
		t.Errorf("revoke -user again: %q", out)
	}
	if out, _ := h.ctl(0, "sessions", "list", "-user", "user-ada"); out != "user user-ada has no active session\n" {
		t.Errorf("sessions list with none: %q", out)
	}
	h.refused("user_not_found", "sessions", "list", "-user", "user-nobody")
	var jwks client.JWKS
	h.json(&jwks, "sessions", "jwks")
	out, _ = h.ctl(0, "sessions", "jwks")
	if len(jwks.Keys) != 1 || !strings.HasPrefix(out, "KID") || !strings.Contains(out, jwks.Keys[0].Kid+"  EC   P-256  ES256  sig") {
		t.Errorf("jwks: %+v\n%s", jwks, out)
	}

	// The workers' session-signing keys.
	h.golden("keys_rotate", "keys", "rotate", "-change-id", "rot-1")
	h.golden("keys_list", "keys", "list")
	h.refused("key_rotation_in_progress", "keys", "rotate")
	var kl struct{ Keys []client.SigningKey }
	h.json(&kl, "keys", "list")
	if len(kl.Keys) != 2 || kl.Keys[0].State != client.KeySigning || kl.Keys[1].State != client.KeyNext || kl.Keys[0].KID != jwks.Keys[0].Kid {
		t.Errorf("keys list -json: %+v", kl)
	}

	// Deletes.
	if out, _ := h.ctl(0, "user", "delete", "-id", "user-grace"); out != "deleted user user-grace (version 2)\n" {
		t.Errorf("user delete: %q", out)
	}
	h.json(&pr, "profile", "delete", "-id", partnerProfile)
	if pr.Profile.ProfileID != partnerProfile || pr.Profile.Version != 3 {
		t.Errorf("profile delete -json: %+v", pr)
	}

	// The audit log, whole and filtered, and its audit.
	h.golden("events", "events", "-replay", "-no-follow")
	h.golden("events_filtered", "events", "-replay", "-no-follow", "-type", "session.>", "-type", "attest.failed", "-user", "user-ada")
	out, _ = h.ctl(0, "events", "-replay", "-no-follow", "-profile", partnerProfile, "-json")
	var types []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var ev client.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.ID == "" || ev.Time.IsZero() {
			t.Errorf("events -json line %q: %v", l, err)
		}
		types = append(types, ev.Type)
	}
	if got, want := strings.Join(types, " "), "tat.profile.created tat.profile.updated tat.profile.rejected tat.session.updated tat.profile.deleted"; got != want {
		t.Errorf("events of the partner profile: %s, want %s", got, want)
	}
	if strings.Contains(out, sessionToken) {
		t.Fatal("the audit log holds a bearer secret")
	}
	h.golden("audit_check", "audit", "check")
	var rep audit.Report
	h.json(&rep, "audit", "check", "-stream", "admin")
	if rep.Failed() || rep.OK != 10 {
		t.Errorf("audit of the admin stream: %+v", rep)
	}
	h.golden("audit_summary", "audit", "summary")
}
