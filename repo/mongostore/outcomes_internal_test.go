package mongostore

import "testing"

// TestOutcomeModelErrorType: an outcome stored with error_type keeps it; one
// stored before the field existed gets it from its reply, in domain(), so
// callers never decode the reply for it.
func TestOutcomeModelErrorType(t *testing.T) {
	ev := `{"specversion":"1.0","id":"e","type":"t","source":"s"}`
	cases := []struct {
		name string
		m    outcomeModel
		want string
	}{
		{"stored field", outcomeModel{ID: "a", StatusCode: 404, ErrorType: "user_not_found", Reply: `{"error_type":"other"}`, Event: ev}, "user_not_found"},
		{"legacy refusal", outcomeModel{ID: "b", StatusCode: 401, Reply: `{"status_code":401,"error_type":"token_replayed"}`, Event: ev}, "token_replayed"},
		{"legacy success", outcomeModel{ID: "c", StatusCode: 200, Reply: `{"status_code":200}`, Event: ev}, ""},
		{"legacy, reply not JSON", outcomeModel{ID: "d", StatusCode: 500, Reply: `nope`, Event: ev}, ""},
	}
	for _, tc := range cases {
		o, err := tc.m.domain()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if o.ErrorType != tc.want {
			t.Errorf("%s: ErrorType %q, want %q", tc.name, o.ErrorType, tc.want)
		}
	}
}
