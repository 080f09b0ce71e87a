package domain_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

func TestValidCommandID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   string
		want bool
	}{
		{name: "empty", id: "", want: false},
		{name: "1 character", id: "a", want: true},
		{name: "128 characters", id: strings.Repeat("a", 128), want: true},
		{name: "129 characters", id: strings.Repeat("a", 129), want: false},
		{name: "every allowed character", id: "AZaz09._:-", want: true},
		{name: "uuid", id: "3f2c1d7e-9a4b-4c1e-8f00-123456789abc", want: true},
		{name: "prefixed id", id: domain.ProfileIDPrefix + "3f2c1d7e", want: true},
		{name: "space", id: "r 1", want: false},
		{name: "slash", id: "r/1", want: false},
		{name: "NATS wildcard star", id: "r*", want: false},
		{name: "NATS wildcard gt", id: "r>", want: false},
		{name: "plus", id: "r+1", want: false},
		{name: "at", id: "r@1", want: false},
		{name: "trailing newline", id: "r-1\n", want: false},
		{name: "leading newline", id: "\nr-1", want: false},
		{name: "NUL", id: "r\x001", want: false},
		{name: "non-ASCII letter", id: "réquest", want: false},
		{name: "fullwidth digit", id: "r１", want: false},
		{name: "128 characters and a bad one", id: strings.Repeat("a", 127) + "/", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.ValidCommandID(tc.id); got != tc.want {
				t.Errorf("ValidCommandID(%q) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

var (
	uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestDerivedUUID(t *testing.T) {
	t.Parallel()
	a := domain.DerivedUUID("attest", "r-1")
	if !uuidV8.MatchString(a) {
		t.Errorf("DerivedUUID = %q, want a version 8 UUID with the RFC 9562 variant", a)
	}
	if again := domain.DerivedUUID("attest", "r-1"); again != a {
		t.Errorf("DerivedUUID is not stable: %q, then %q", a, again)
	}
	// Known answer (SHA-256 of "6:attest;3:r-1;", computed independently):
	// a change to the derivation would change every id a redelivered
	// command derives, so it must be deliberate.
	if want := "0f578634-3ade-8207-9d40-5be7dbb57539"; a != want {
		t.Errorf("DerivedUUID(attest, r-1) = %q, want %q", a, want)
	}
	distinct := map[string][]string{a: {"attest", "r-1"}}
	for _, parts := range [][]string{
		{"attest", "r-2"},
		{"profile", "r-1"},
		{"attestr-1"},
		{"attest", "r", "-1"},
		{"attes", "tr-1"},
		{"attest", "r-1", ""},
		{"", "attest", "r-1"},
		{},
		{""},
	} {
		id := domain.DerivedUUID(parts...)
		if !uuidV8.MatchString(id) {
			t.Errorf("DerivedUUID(%q) = %q, not a version 8 UUID", parts, id)
		}
		if prev, dup := distinct[id]; dup {
			t.Errorf("DerivedUUID(%q) = DerivedUUID(%q) = %s", parts, prev, id)
		}
		distinct[id] = parts
	}
}

func TestNewUUID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := domain.NewUUID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewUUID = %q, want a version 4 UUID with the RFC 4122 variant", id)
		}
		if seen[id] {
			t.Fatalf("NewUUID repeated %q", id)
		}
		seen[id] = true
	}
}
