package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tat-worker/attest/worker/workertest"
)

// TestREADMEWalkthrough follows the README's walkthrough word for word
// against a real worker on real NATS and FerretDB: keygen, profile apply
// with -pem, user apply, token mint, attest (a session), the same token
// again (token_replayed), authenticate, revoke, and the audit log.
func TestREADMEWalkthrough(t *testing.T) {
	env := workertest.NewEnv(t)
	env.StartWorker(nil, nil)
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	t.Chdir(dir)
	ctl := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(append([]string{"-nats", env.NATSURL}, args...), &out, &errb)
		if code != wantCode {
			t.Fatalf("attestctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String()
	}
	ctl(0, "keygen", "-out", "dev")
	ctl(0, "profile", "apply", "-f", filepath.Join(root, "examples/profile.json"), "-pem", "dev.pub.pem")
	ctl(0, "user", "apply", "-f", filepath.Join(root, "examples/user.json"))
	token := strings.TrimSpace(ctl(0, "token", "mint", "-key", "dev.key.pem", "-iss", "https://dev.example.com/", "-aud", "my-app", "-email", "ada@example.com", "-roles", "admin"))
	var rep struct {
		StatusCode   int    `json:"status_code"`
		SessionToken string `json:"session_token"`
		SessionJWT   string `json:"session_jwt"`
		Session      struct {
			Roles                 []string `json:"roles"`
			AuthenticationFactors []struct {
				Type string `json:"type"`
			} `json:"authentication_factors"`
		} `json:"session"`
	}
	out := ctl(0, "attest", "-profile", "trusted-auth-token-profile-dev", "-token", token, "-duration", "60")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("attest output: %v\n%s", err, out)
	}
	if rep.StatusCode != 200 || !strings.HasPrefix(rep.SessionToken, "tat_st_") || rep.SessionJWT == "" ||
		len(rep.Session.Roles) != 1 || rep.Session.Roles[0] != "admin" || rep.Session.AuthenticationFactors[0].Type != "trusted_auth_token" {
		t.Fatalf("attest reply: %s", out)
	}
	if out := ctl(1, "attest", "-profile", "trusted-auth-token-profile-dev", "-token", token, "-duration", "60"); !strings.Contains(out, "token_replayed") {
		t.Fatalf("second attest: %s", out)
	}
	ctl(0, "sessions", "authenticate", "-session-token", rep.SessionToken)
	ctl(0, "sessions", "revoke", "-session-token", rep.SessionToken)
	events := ctl(0, "events", "-replay", "-no-follow")
	for _, typ := range []string{"tat.profile.created", "tat.user.created", "tat.session.created", "tat.attest.failed", "tat.session.revoked"} {
		if !strings.Contains(events, `"type":"`+typ+`"`) {
			t.Errorf("audit log lacks %s:\n%s", typ, events)
		}
	}
	if strings.Contains(events, rep.SessionToken) || strings.Contains(events, token) {
		t.Fatal("audit log holds a bearer secret")
	}
	if _, err := os.Stat("dev.key.pem"); err != nil {
		t.Fatal(err)
	}
}
