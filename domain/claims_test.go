package domain_test

import (
	"encoding/json"
	"errors"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

func TestMergeClaims(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		base, update map[string]any
		want         map[string]any
	}{
		{name: "both nil gives an empty map", want: map[string]any{}},
		{name: "nil base takes the update", update: map[string]any{"plan": "pro"}, want: map[string]any{"plan": "pro"}},
		{name: "nil update keeps the base", base: map[string]any{"plan": "pro"}, want: map[string]any{"plan": "pro"}},
		{name: "update overwrites a key", base: map[string]any{"plan": "free", "seat": 1}, update: map[string]any{"plan": "pro"}, want: map[string]any{"plan": "pro", "seat": 1}},
		{name: "null deletes a key", base: map[string]any{"plan": "pro", "seat": 1}, update: map[string]any{"plan": nil}, want: map[string]any{"seat": 1}},
		{name: "null for an absent key is a no-op", base: map[string]any{"seat": 1}, update: map[string]any{"plan": nil}, want: map[string]any{"seat": 1}},
		{name: "null on a nil base leaves no key", update: map[string]any{"plan": nil}, want: map[string]any{}},
		{name: "deleting every key gives an empty map", base: map[string]any{"plan": "pro"}, update: map[string]any{"plan": nil}, want: map[string]any{}},
		{name: "nested objects are replaced, not merged", base: map[string]any{"ext": map[string]any{"a": 1}}, update: map[string]any{"ext": map[string]any{"b": 2}}, want: map[string]any{"ext": map[string]any{"b": 2}}},
		{name: "false and zero are values, not deletions", base: map[string]any{"a": true, "b": 1}, update: map[string]any{"a": false, "b": 0, "c": ""}, want: map[string]any{"a": false, "b": 0, "c": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			baseBefore := maps.Clone(tc.base)
			got := domain.MergeClaims(tc.base, tc.update)
			if got == nil {
				t.Fatal("MergeClaims returned nil")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MergeClaims = %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.base, baseBefore) {
				t.Errorf("MergeClaims changed its base: %v, was %v", tc.base, baseBefore)
			}
		})
	}
}

func TestMergeClaimsReturnsACopy(t *testing.T) {
	t.Parallel()
	base := map[string]any{"plan": "pro"}
	got := domain.MergeClaims(base, nil)
	got["plan"] = "free"
	if base["plan"] != "pro" {
		t.Errorf("writing the result changed the base: %v", base)
	}
}

func TestCheckClaimsSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		claims  map[string]any
		wantErr error
	}{
		{name: "nil"},
		{name: "empty", claims: map[string]any{}},
		{name: "exactly 4 KiB", claims: map[string]any{"k": strings.Repeat("x", domain.MaxCustomClaimsBytes-len(`{"k":""}`))}},
		{name: "one byte over 4 KiB", claims: map[string]any{"k": strings.Repeat("x", domain.MaxCustomClaimsBytes-len(`{"k":""}`)+1)}, wantErr: domain.ErrCustomClaimsTooLarge},
		{
			name: "two halves that fit alone but not merged",
			claims: domain.MergeClaims(
				map[string]any{"a": strings.Repeat("x", 2100)},
				map[string]any{"b": strings.Repeat("y", 2100)}),
			wantErr: domain.ErrCustomClaimsTooLarge,
		},
		{name: "json numbers", claims: map[string]any{"n": json.Number("1.50")}},
		{name: "a value JSON cannot encode", claims: map[string]any{"n": math.Inf(1)}, wantErr: domain.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := domain.CheckClaimsSize(tc.claims)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckClaimsSize: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckClaimsSize = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestParseCustomClaimsSizeBoundary: the 4 KiB limit is on the claims as
// JSON. A value of exactly 4 KiB is within it, so a fault in it is reported
// as what it is (malformed JSON), not as "too large"; a value over 4 KiB
// that compacts to 4 KiB or less is accepted; one that does not is refused.
func TestParseCustomClaimsSizeBoundary(t *testing.T) {
	t.Parallel()
	pad := func(n int) string { // {"k":"xxx…"} of exactly n bytes
		return `{"k":"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"}`
	}
	limit := domain.MaxCustomClaimsBytes

	exact := pad(limit)
	if _, err := domain.ParseCustomClaims(json.RawMessage(exact)); err != nil {
		t.Fatalf("exactly %d bytes: %v", limit, err)
	}
	malformed := exact[:limit-1] + "," // still exactly the limit
	_, err := domain.ParseCustomClaims(json.RawMessage(malformed))
	if !errors.Is(err, domain.ErrInvalidRequest) || errors.Is(err, domain.ErrCustomClaimsTooLarge) {
		t.Errorf("malformed JSON of exactly %d bytes = %v, want invalid_request (not too large)", limit, err)
	}

	spaced := " " + pad(limit) + "\n" // over the limit as sent, within it compacted
	if _, err := domain.ParseCustomClaims(json.RawMessage(spaced)); err != nil {
		t.Errorf("%d bytes that compact to %d: %v", len(spaced), limit, err)
	}
	if _, err := domain.ParseCustomClaims(json.RawMessage(pad(limit + 1))); !errors.Is(err, domain.ErrCustomClaimsTooLarge) {
		t.Errorf("%d bytes: %v, want custom_claims_too_large", limit+1, err)
	}
}
