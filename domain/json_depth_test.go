package domain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// depthReached is how deep encoding/json's tokenizer nests in data before
// it stops, at the end or at the first error: the reference for
// jsonTooDeep.
func depthReached(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

func depthSeeds() []string {
	return []string{
		`{}`, `[]`, `0`, `"x"`, ``, `{"a":[{"b":[]}]}`,
		strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth),
		strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1),
		strings.Repeat(`{"a":`, MaxJSONDepth+1) + "0" + strings.Repeat("}", MaxJSONDepth+1),
		strings.Repeat("[", 30000),
		`["` + strings.Repeat("[", 40) + `"]`,
		`["\"` + strings.Repeat("[", 40) + `"]`,
		`["\\",` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `]`,
		`["\u005c` + strings.Repeat("[", 40) + `"]`,
		`[] ` + strings.Repeat("[", 40),
		`]` + strings.Repeat("[", 40),
		`{"a":1}}` + strings.Repeat("[", 40),
		`"` + strings.Repeat("[", 40),
		`"\` + strings.Repeat("[", 40),
		"[\"\xff\"," + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "]",
	}
}

func TestJSONTooDeep(t *testing.T) {
	t.Parallel()
	for _, s := range depthSeeds() {
		checkDepthAgainstReference(t, []byte(s))
	}
	for levels := range MaxJSONDepth + 3 {
		data := []byte(strings.Repeat(`[{"k":`, levels) + "0" + strings.Repeat("}]", levels))
		if got, want := jsonTooDeep(data), 2*levels > MaxJSONDepth; got != want {
			t.Errorf("%d levels: jsonTooDeep = %v", 2*levels, got)
		}
	}
}

// TestJSONTooDeepAllocatesNothing: the pre-pass costs no memory, whatever
// the input.
func TestJSONTooDeepAllocatesNothing(t *testing.T) {
	for _, s := range append(depthSeeds(), strings.Repeat(`"\"[",`, 10000)) {
		data := []byte(s)
		if n := testing.AllocsPerRun(10, func() { jsonTooDeep(data) }); n != 0 {
			t.Errorf("jsonTooDeep allocated %v times on %.40q", n, s)
		}
	}
}

// FuzzJSONDepth checks the nesting pre-pass against encoding/json's own
// tokenizer: on any input, if encoding/json would nest deeper than
// MaxJSONDepth before stopping, the pre-pass says too deep; on valid JSON
// the two agree exactly.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range depthSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDepthAgainstReference(t, data)
	})
}

func checkDepthAgainstReference(t *testing.T, data []byte) {
	t.Helper()
	got := jsonTooDeep(data)
	reached := depthReached(data)
	if reached > MaxJSONDepth && !got {
		t.Fatalf("encoding/json nests %d levels in %.60q, the pre-pass lets it through", reached, data)
	}
	if json.Valid(data) && got != (reached > MaxJSONDepth) {
		t.Fatalf("valid JSON %.60q nests %d levels, the pre-pass says too deep = %v", data, reached, got)
	}
}
