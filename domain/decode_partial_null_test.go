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
