package domain_test

import (
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// TestDecodeStrictObject: the exported strict decoder keeps member names
// exactly, and names what it refuses without quoting the data.
func TestDecodeStrictObject(t *testing.T) {
	t.Parallel()
	obj, err := domain.DecodeStrictObject([]byte(`{"kid":"a","KID":"b","\u006b":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if obj["kid"] != "a" || obj["KID"] != "b" || obj["k"] == nil || len(obj) != 3 {
		t.Fatalf("obj = %v", obj)
	}
	const secret = "c2VjcmV0LWtleS1tYXRlcmlhbA"
	for _, tc := range []struct{ data, want string }{
		{`{"d":"` + secret + `","d":"` + secret + `"}`, "duplicate member name"},
		{`{"d":"` + secret + `","k":{"d":1,"d":2}}`, "duplicate member name"},
		{`{"d":"` + secret + `","x":[`, "malformed JSON"},
		{`{"d":"` + secret + `"}` + `"` + secret + `"`, "data after the JSON object"},
		{`{"d":"` + secret + `","x":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`, "nested deeper than 32 levels"},
		{`{"d":` + secret + `}`, "malformed JSON"},
		{`["` + secret + `"]`, "not a JSON object"},
		{"{\"d\":\"\xff" + secret + "\"}", "not valid UTF-8"},
	} {
		_, err := domain.DecodeStrictObject([]byte(tc.data))
		if err == nil || err.Error() != tc.want {
			t.Errorf("DecodeStrictObject(%.40s...) = %v, want %q", tc.data, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret[:8]) {
			t.Errorf("the error %q quotes the data", err)
		}
	}
}
