package domain

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeStrictBusPartialNullAndShortArrays: into values that already
// hold something, a null and a short array do what encoding/json does: a
// pointer or a slice of structs becomes nil, an array keeps its length and
// the elements the JSON does not give are zeroed.
func TestDecodeStrictBusPartialNullAndShortArrays(t *testing.T) {
	type item struct {
		A string `json:"a"`
	}
	type holder struct {
		P   *item   `json:"p"`
		S   []item  `json:"s"`
		Arr [3]item `json:"arr"`
		Q   *item   `json:"q"`
	}
	preset := func() holder {
		return holder{
			P: &item{A: "p"}, S: []item{{A: "s"}},
			Arr: [3]item{{A: "x"}, {A: "y"}, {A: "z"}}, Q: &item{A: "q"},
		}
	}
	for _, in := range []string{
		`{"p":null,"s":null,"arr":[{"a":"1"}],"q":{"a":"2"}}`,
		`{"p":null,"s":[],"arr":[],"q":null}`,
		`{"arr":[{"a":"1"},{"a":"2"}],"extra":[1,2,3]}`,
		`{"arr":null,"s":[{"a":"3"},{"a":"4"}]}`,
	} {
		want, got := preset(), preset()
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("encoding/json refused %s: %v", in, err)
		}
		if err := DecodeStrictBusPartial([]byte(in), &got, 0); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v (encoding/json)", in, got, want)
		}
	}
}

// TestDecodeStrictBusPartialRefusesCaseVariantsAtTheAlphabetsEnds: the
// case variants of names holding 'a' and 'z' (the ends of the ASCII
// folding range) are refused like any other.
func TestDecodeStrictBusPartialRefusesCaseVariantsAtTheAlphabetsEnds(t *testing.T) {
	type zoned struct {
		Zone  string `json:"zone"`
		Alpha string `json:"alpha"`
	}
	var ok zoned
	if err := DecodeStrictBusPartial([]byte(`{"zone":"z","alpha":"a"}`), &ok, 0); err != nil || ok.Zone != "z" || ok.Alpha != "a" {
		t.Fatalf("exact names: %+v, %v", ok, err)
	}
	for _, in := range []string{`{"ZONE":"z"}`, `{"zonE":"z"}`, `{"Zone":"z"}`, `{"ALPHA":"a"}`, `{"alphA":"a"}`} {
		var v zoned
		if err := DecodeStrictBusPartial([]byte(in), &v, 0); err == nil {
			t.Errorf("%s: a case variant of a field's name was accepted: %+v", in, v)
		}
	}
}

// TestDecodeStrictBusPartialUnrelatedNonASCIINamesAreUnknown: a name whose
// non-ASCII letter folds to no ASCII letter is an unknown member (skipped),
// not a variant of a field whose name differs from it only there: "œ"
// (U+0153) is not "S" although its low byte is.
func TestDecodeStrictBusPartialUnrelatedNonASCIINamesAreUnknown(t *testing.T) {
	var v struct {
		SessionID string `json:"session_id"`
	}
	for _, in := range []string{`{"\u0153ession_id":"x"}`, `{"œession_id":"x","session_id":"s"}`, `{"ſession_id":"x"}`} {
		v.SessionID = ""
		err := DecodeStrictBusPartial([]byte(in), &v, 0)
		switch {
		case in == `{"ſession_id":"x"}`:
			if err == nil {
				t.Errorf("%s: U+017F folds to s, a variant, and was accepted", in)
			}
		case err != nil:
			t.Errorf("%s: %v", in, err)
		case in == `{"œession_id":"x","session_id":"s"}` && v.SessionID != "s":
			t.Errorf("%s: session_id = %q", in, v.SessionID)
		}
	}
}
