package main

import (
	"strings"
	"testing"

	"github.com/tat-worker/attest/client"
)

func TestApplyFileBareObject(t *testing.T) {
	profile := `{"name": "Zendesk SSO", "issuer": "https://idp.example.com/", "audience": "my-app",
		"public_keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"],
		"attribute_mapping": {"email": "email", "token_id": "jti"}, "can_jit_provision": true}`
	f, err := decodeApplyFile[client.Profile]("profile", []byte(profile))
	if err != nil {
		t.Fatal(err)
	}
	if f.Op != "upsert" || f.ChangeID != "" || f.ExpectedVersion != nil || f.Object == nil {
		t.Fatalf("%+v", f)
	}
	p := f.Object.ProfileSpec
	if p.Name != "Zendesk SSO" || p.AttributeMapping.TokenID != "jti" || !p.CanJITProvision || len(p.PublicKeys) != 1 {
		t.Errorf("%+v", p)
	}

	// What "profile get -json" prints applies as it is.
	got := `{"profile_id": "p-1", "issuer": "i", "audience": "a", "attribute_mapping": {"email": "email", "token_id": "jti"},
		"version": 3, "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}`
	if f, err := decodeApplyFile[client.Profile]("profile", []byte(got)); err != nil || f.Object.ProfileID != "p-1" {
		t.Errorf("get output: %+v, %v", f, err)
	}

	user := `{"emails": [{"email": "Ada@Example.com", "verified": true}], "name": {"first_name": "Ada"},
		"trusted_metadata": {"plan": "pro", "n": 1.50}}`
	u, err := decodeApplyFile[client.User]("user", []byte(user))
	if err != nil {
		t.Fatal(err)
	}
	if u.Object.Emails[0].Email != "Ada@Example.com" || u.Object.Name.FirstName != "Ada" ||
		!strings.Contains(string(u.Object.TrustedMetadata), `"n": 1.50`) {
		t.Errorf("%+v (metadata %s)", u.Object, u.Object.TrustedMetadata)
	}
}

func TestApplyFileWholeCommand(t *testing.T) {
	f, err := decodeApplyFile[client.Profile]("profile", []byte(`{"change_id": "c-1", "op": "upsert", "expected_version": 2,
		"profile": {"name": "x", "issuer": "i", "audience": "a", "attribute_mapping": {"email": "e", "token_id": "j"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.ChangeID != "c-1" || f.Op != "upsert" || f.ExpectedVersion == nil || *f.ExpectedVersion != 2 || f.Object.Name != "x" {
		t.Errorf("%+v", f)
	}
	d, err := decodeApplyFile[client.User]("user", []byte(`{"op": "delete", "user_id": "user-1"}`))
	if err != nil || d.Op != "delete" || d.ID != "user-1" || d.Object != nil {
		t.Errorf("%+v, %v", d, err)
	}
}

func TestApplyFileRefuses(t *testing.T) {
	cases := map[string]string{
		"empty":                ``,
		"array":                `[{"name": "x"}]`,
		"string":               `"x"`,
		"broken":               `{"name": `,
		"trailing data":        `{"name": "x"} {"name": "y"}`,
		"misspelt member":      `{"name": "x", "isuser": "i"}`,
		"misspelt nested":      `{"name": "x", "attribute_mapping": {"mail": "email"}}`,
		"wrong type":           `{"can_jit_provision": "yes"}`,
		"change_id not text":   `{"op": "upsert", "change_id": 5, "profile": {}}`,
		"unknown command key":  `{"op": "upsert", "profile": {}, "extra": 1}`,
		"unknown op":           `{"op": "patch", "profile": {}}`,
		"upsert without it":    `{"op": "upsert", "profile_id": "p"}`,
		"delete without an id": `{"op": "delete", "profile": {}}`,
	}
	for name, in := range cases {
		if _, err := decodeApplyFile[client.Profile]("profile", []byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err := decodeApplyFile[client.Profile]("profile", []byte(`{"name": "x", "isuer": "i"}`))
	if err == nil || !strings.Contains(err.Error(), `"isuer"`) {
		t.Errorf("a misspelt member is not named: %v", err)
	}
}
