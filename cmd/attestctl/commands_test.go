package main

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func TestWrapCommandBareObject(t *testing.T) {
	profile := `{"name": "Zendesk SSO", "issuer": "https://idp.example.com/", "audience": "my-app",
		"public_keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"],
		"attribute_mapping": {"email": "email", "token_id": "jti"}, "can_jit_provision": true}`
	body, id, err := wrapCommand(kindProfile, []byte(profile), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !domain.ValidCommandID(id) {
		t.Fatalf("generated change_id %q is not valid", id)
	}
	got := decodeMap(t, body)
	if got["op"] != "upsert" || got["change_id"] != id {
		t.Errorf("command %v", got)
	}
	if _, ok := got["expected_version"]; ok {
		t.Error("expected_version set without the flag")
	}
	if !reflect.DeepEqual(got["profile"], decodeMap(t, []byte(profile))) {
		t.Errorf("profile changed on the way:\n%v", got["profile"])
	}
	if len(got) != 3 {
		t.Errorf("command has extra fields: %v", got)
	}
	// The result decodes strictly as the worker decodes it.
	var cmd domain.ProfileCommand
	if err := domain.DecodeStrict(body, &cmd); err != nil {
		t.Fatalf("the worker would refuse it: %v", err)
	}
	if err := cmd.Validate(); err != nil || cmd.Profile.Name != "Zendesk SSO" {
		t.Errorf("%+v: %v", cmd, err)
	}

	// Two wraps of the same file are two commands.
	_, id2, _ := wrapCommand(kindProfile, []byte(profile), "", nil)
	if id2 == id {
		t.Error("the random change_id repeated")
	}
}

func TestWrapCommandUser(t *testing.T) {
	user := `{"emails": [{"email": "Ada@Example.com", "verified": true}], "name": {"first_name": "Ada"}}`
	v := int64(0)
	body, id, err := wrapCommand(kindUser, []byte(user), "u-1", &v)
	if err != nil {
		t.Fatal(err)
	}
	if id != "u-1" {
		t.Errorf("id %q", id)
	}
	var cmd domain.UserCommand
	if err := domain.DecodeStrict(body, &cmd); err != nil {
		t.Fatalf("the worker would refuse it: %v", err)
	}
	if cmd.ChangeID != "u-1" || cmd.Op != "upsert" || cmd.ExpectedVersion == nil || *cmd.ExpectedVersion != 0 ||
		cmd.User == nil || cmd.User.Emails[0].Email != "Ada@Example.com" {
		t.Errorf("%+v", cmd)
	}
}

func TestWrapCommandWholeCommand(t *testing.T) {
	whole := `{"change_id": "c-1", "op": "upsert", "expected_version": 2, "profile": {"name": "x", "n": 1.50}}`
	body, id, err := wrapCommand(kindProfile, []byte(whole), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != "c-1" {
		t.Errorf("id %q, want the file's c-1", id)
	}
	got := decodeMap(t, body)
	if got["op"] != "upsert" || got["expected_version"] != float64(2) || got["change_id"] != "c-1" {
		t.Errorf("%v", got)
	}
	if !strings.Contains(string(body), `"n":1.50`) {
		t.Errorf("values are not passed through as written: %s", body)
	}

	// Flags override the file.
	v := int64(7)
	body, id, err = wrapCommand(kindProfile, []byte(whole), "c-2", &v)
	if err != nil {
		t.Fatal(err)
	}
	got = decodeMap(t, body)
	if id != "c-2" || got["change_id"] != "c-2" || got["expected_version"] != float64(7) {
		t.Errorf("%s: %v", id, got)
	}

	// A command without a change_id gets one; a delete is sent as it is.
	body, id, err = wrapCommand(kindUser, []byte(`{"op": "delete", "user_id": "user-1"}`), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got = decodeMap(t, body)
	if !domain.ValidCommandID(id) || got["change_id"] != id || got["op"] != "delete" || got["user_id"] != "user-1" || len(got) != 3 {
		t.Errorf("%s: %v", id, got)
	}
}

func TestWrapCommandRefuses(t *testing.T) {
	cases := map[string]string{
		"empty":              ``,
		"array":              `[{"name": "x"}]`,
		"string":             `"x"`,
		"broken":             `{"name": `,
		"trailing data":      `{"name": "x"} {"name": "y"}`,
		"change_id not text": `{"op": "upsert", "change_id": 5, "profile": {}}`,
		"change_id invalid":  `{"op": "upsert", "change_id": "has space", "profile": {}}`,
		"too large":          `{"name": "` + strings.Repeat("x", domain.MaxPayloadBytes) + `"}`,
	}
	for name, in := range cases {
		if _, _, err := wrapCommand(kindProfile, []byte(in), "", nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAttestRequestIsSentInClear(t *testing.T) {
	// domain.AttestRequest redacts secrets when marshalled; the client's own
	// type must not, or the worker would get "REDACTED" as the token.
	d := 60
	b, err := json.Marshal(attestRequest{RequestID: "r-1", ProfileID: "p", Token: "eyJ.x.y",
		SessionDurationMinutes: &d, SessionCustomClaims: json.RawMessage(`{"plan":"pro"}`), SessionToken: "st"})
	if err != nil {
		t.Fatal(err)
	}
	var req domain.AttestRequest
	if err := domain.DecodeStrict(b, &req); err != nil {
		t.Fatalf("the worker would refuse it: %v", err)
	}
	if req.Token.Reveal() != "eyJ.x.y" || req.SessionToken.Reveal() != "st" || *req.SessionDurationMinutes != 60 {
		t.Errorf("%s", b)
	}
	if _, err := req.Validate(); err != nil {
		t.Error(err)
	}
	b, _ = json.Marshal(attestRequest{RequestID: "r-2", ProfileID: "p", Token: "t"})
	if want := `{"request_id":"r-2","profile_id":"p","token":"t"}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}

func TestAddPEMsToBareProfileAndCommand(t *testing.T) {
	dir := t.TempDir()
	pemFile := dir + "/k.pub.pem"
	if err := os.WriteFile(pemFile, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"bare":    `{"issuer":"i","public_keys":["x"]}`,
		"command": `{"op":"upsert","profile":{"issuer":"i","public_keys":["x"]}}`,
	} {
		out, err := addPEMs([]byte(in), []string{pemFile})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var v map[string]any
		_ = json.Unmarshal(out, &v)
		if p, ok := v["profile"].(map[string]any); ok {
			v = p
		}
		keys, _ := v["public_keys"].([]any)
		if len(keys) != 2 || !strings.Contains(keys[1].(string), "BEGIN PUBLIC KEY") {
			t.Fatalf("%s: public_keys = %v", name, keys)
		}
	}
	if out, _ := addPEMs([]byte(`{"a":1}`), nil); string(out) != `{"a":1}` {
		t.Fatal("no -pem must leave the file as it is")
	}
}
