package domain_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/tat-worker/attest/domain"
)

// partialSession is what the view reads of a session event's data.
type partialSession struct {
	Session *struct {
		SessionID string `json:"session_id"`
	} `json:"session"`
	SessionRevision int64 `json:"session_revision"`
}

// partialAudit is what the audit reads of an event.
type partialAudit struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Stream      string    `json:"stream"`
		StreamSeq   uint64    `json:"stream_seq"`
		RequestedAt time.Time `json:"requested_at"`
		RequestID   string    `json:"request_id"`
	} `json:"data"`
	KID string `json:"kid"`
}

// partialList has a typed list of structs, read element by element.
type partialList struct {
	Items []struct {
		Name string `json:"name"`
	} `json:"items"`
	Ptrs  []*struct{ N int } `json:"ptrs"`
	Pair  [2]struct{ N int } `json:"pair"`
	Other int                `json:"other"`
}

// partialEmbedded reads members of embedded structs, as encoding/json
// does: the shallower of two fields of one name wins.
type partialEmbedded struct {
	partialPosition
	*PartialMore
	Stream string `json:"stream"`
}

type partialPosition struct {
	Stream    string `json:"stream"`
	StreamSeq uint64 `json:"stream_seq"`
}

type PartialMore struct {
	RequestID string `json:"request_id"`
}

// partialConflicts embeds structs whose fields share names, to check that
// the partial decoder resolves them by encoding/json's rules: X is at one
// depth twice untagged (hidden), T twice tagged (hidden), W tagged in one
// place and not in the other (the tagged one wins), Y in a type embedded
// at two places of one depth (hidden), Z one level further down (read, as
// encoding/json reads it), and a type that embeds itself ends. It is
// made by reflect, as go vet refuses such a type written out (struct
// fields repeat json tags): the one below with PartialA, PartialB and
// *PartialCycle embedded.
var partialConflictsType = reflect.StructOf([]reflect.StructField{
	{Name: "PartialA", Type: reflect.TypeFor[PartialA](), Anonymous: true},
	{Name: "PartialB", Type: reflect.TypeFor[PartialB](), Anonymous: true},
	{Name: "PartialCycle", Type: reflect.TypeFor[*PartialCycle](), Anonymous: true},
})

func newPartialConflicts() any { return reflect.New(partialConflictsType).Interface() }

type PartialA struct {
	X int
	T int `json:"t"`
	W int `json:"W"`
	PartialC
}

type PartialB struct {
	X int
	T int `json:"t"`
	W int
	PartialC
}

type PartialC struct {
	Y int `json:"y"`
	PartialD
}

type PartialD struct {
	Z int `json:"z"`
}

type PartialCycle struct {
	*PartialCycle
	N int `json:"n"`
}

const partialGood = `{"request_id":"r-1","profile_id":"p","user_id":"u","token_sha256":"x",` +
	`"session":{"session_id":"s-1","user_id":"u","factors":[{"type":"t","Type":"u","type":"v"}],"custom_claims":{"a":{"A":1,"a":2}}},` +
	`"session_revision":3,"stream":"TAT_ATTEST","stream_seq":9,"reply_refused":false}`

// TestDecodeStrictBusPartial: exact names are read, unknown members are
// skipped, and a case or folding variant of a field's name, a member sent
// twice, a value of the wrong shape and anything out of DecodeStrictBus's
// bounds are refused.
func TestDecodeStrictBusPartial(t *testing.T) {
	t.Parallel()
	var s partialSession
	if err := domain.DecodeStrictBusPartial([]byte(partialGood), &s, 0); err != nil {
		t.Fatalf("a good session event's data: %v", err)
	}
	if s.Session == nil || s.Session.SessionID != "s-1" || s.SessionRevision != 3 {
		t.Fatalf("decoded %+v", s)
	}
	sess := func(members string) string { return `{"session":{"session_id":"s-1"},` + members + `}` }
	nest := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	for _, tc := range []struct {
		name, data string
		into       func() any
		want       string // "" to accept
		max        int
	}{
		// Accepted.
		{name: "unknown members, in any order", data: `{"x":1,"session_revision":2,"y":[{"session":1}],"session":{"z":null,"session_id":"s"}}`},
		{name: "an escaped exact name", data: `{"\u0073ession":{"session_\u0069d":"s"}}`},
		{name: "null for a struct pointer", data: `{"session":null,"session_revision":1}`},
		{name: "null for everything", data: `null`},
		{name: "names near a field's that do not fold to it", data: sess(`"sessions":1,"session_revision_":2,"ses sion":3,"s\u00adession":4`)},
		{name: "duplicates and case variants inside a skipped value", data: sess(`"x":{"session":1,"Session":2,"session":3}`)},
		{name: "a value nested to the bound", data: sess(`"x":` + nest(63))},
		{name: "size at the bound given", data: `{"session_revision":1}`, max: 22},
		{name: "a list of structs, a list of pointers, an array", data: `{"items":[{"name":"a","x":1},{}],"ptrs":[null,{"N":1}],"pair":[{"N":1},{"N":2},{"N":3}]}`, into: func() any { return &partialList{} }},

		// Case and folding variants of a field's name.
		{name: "Session", data: `{"Session":{"session_id":"s"}}`, want: `member "Session" differs from field "session"`},
		{name: "SESSION", data: `{"SESSION":{"session_id":"s"}}`, want: "only by case"},
		{name: "a variant next to the exact member", data: sess(`"Session":{"session_id":"t"}`), want: "only by case"},
		{name: "Session_ID inside session", data: `{"session":{"Session_ID":"s"}}`, want: `member "session.Session_ID" differs from field "session_id"`},
		{name: "session_revisioN", data: sess(`"session_revisioN":9`), want: "only by case"},
		{name: "long s (U+017F)", data: `{"ſession":{}}`, want: "only by case"},
		{name: "long s, escaped", data: `{"\u017fession":{}}`, want: "only by case"},
		{name: "fullwidth s", data: `{"ｓession":{}}`, want: "only by case"},
		{name: "all fullwidth", data: `{"ｓｅｓｓｉｏｎ":{}}`, want: "only by case"},
		{name: "fullwidth capitals", data: `{"ＳＥＳＳＩＯＮ":{}}`, want: "only by case"},
		{name: "dotless i", data: `{"sess\u0131on":{}}`, want: "only by case"},
		{name: "dotted capital I", data: `{"sess\u0130on":{}}`, want: "only by case"},
		{name: "sharp s", data: `{"seßion":{}}`, want: "only by case"},
		{name: "st ligature", data: `{"data":{"\ufb06ream":"TAT_ATTEST"}}`, into: func() any { return &partialAudit{} }, want: `member "data.ﬆream" differs from field "stream"`},
		{name: "Kelvin sign", data: `{"\u212aid":"k"}`, into: func() any { return &partialAudit{} }, want: "only by case"},
		{name: "Stream_Seq", data: `{"data":{"Stream_Seq":1}}`, into: func() any { return &partialAudit{} }, want: "only by case"},
		{name: "a variant in a list element", data: `{"items":[{"name":"a"},{"NAME":"b"}]}`, into: func() any { return &partialList{} }, want: `member "items[1].NAME"`},

		// Members sent twice.
		{name: "a field twice", data: sess(`"session_revision":1,"session_revision":2`), want: `field "session_revision" is sent twice`},
		{name: "a nested field twice", data: `{"session":{"session_id":"a","session_id":"b"}}`, want: `field "session.session_id" is sent twice`},
		{name: "a field twice, once escaped", data: `{"session":{},"\u0073ession":{}}`, want: "sent twice"},
		{name: "an unknown member twice", data: sess(`"x":1,"x":2`), want: `member "x" is sent twice`},
		{name: "an unknown member twice inside session", data: `{"session":{"user_id":"a","user_id":"b"}}`, want: `member "session.user_id" is sent twice`},
		{name: "a stream_seq twice", data: `{"data":{"stream_seq":1,"stream_seq":2}}`, into: func() any { return &partialAudit{} }, want: "sent twice"},

		// Shapes and types.
		{name: "a string for a struct", data: `{"session":"s"}`, want: `field "session" must be an object`},
		{name: "an array for a struct", data: `{"session":[]}`, want: "must be an object"},
		{name: "an array for the data", data: `[]`, want: "the data must be an object"},
		{name: "a string for a number", data: sess(`"session_revision":"3"`), want: `field "session_revision" must be a int64`},
		{name: "a fraction for an integer", data: sess(`"session_revision":1.5`), want: "must be a int64"},
		{name: "a number for a time", data: `{"data":{"requested_at":1}}`, into: func() any { return &partialAudit{} }, want: `field "data.requested_at" must be a time.Time`},
		{name: "an object for a list", data: `{"items":{}}`, into: func() any { return &partialList{} }, want: "must be an array"},

		// Bounds and syntax.
		{name: "too deep", data: sess(`"x":` + nest(64)), want: "nested deeper than 64"},
		{name: "arrays too deep", data: sess(`"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000)), want: "nested deeper", max: 1 << 20},
		{name: "over the size given", data: `{"session_revision":1} `, want: "over the limit of 22", max: 22},
		{name: "over the bus limit", data: sess(`"x":"` + strings.Repeat("a", domain.MaxBusJSONBytes) + `"`), want: "over the limit of 1048576"},
		{name: "trailing object", data: sess(`"x":1`) + `{}`, want: "data after the JSON object"},
		{name: "trailing garbage", data: sess(`"x":1`) + `x`, want: "data after the JSON object"},
		{name: "not UTF-8", data: sess(`"x":"` + "\xff" + `"`), want: "not valid UTF-8"},
		{name: "not UTF-8 in a name", data: sess(`"` + "\xc3" + `":1`), want: "not valid UTF-8"},
		{name: "truncated", data: `{"session":{"session_id":"s"`, want: "not valid"},
		{name: "truncated in a skipped value", data: `{"x":[1,2`, want: "not valid"},
		{name: "malformed in a skipped value", data: `{"x":[1,,2]}`, want: "not valid"},
		{name: "empty", data: ``, want: "not valid"},
	} {
		into := tc.into
		if into == nil {
			into = func() any { return &partialSession{} }
		}
		err := domain.DecodeStrictBusPartial([]byte(tc.data), into(), tc.max)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// What is read: a list of structs, a list of pointers, an array of
	// two from three elements.
	var l partialList
	if err := domain.DecodeStrictBusPartial([]byte(`{"items":[{"name":"a","x":1},{}],"ptrs":[null,{"N":1}],"pair":[{"N":1},{"N":2},{"N":3}],"other":7}`), &l, 0); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2 || l.Items[0].Name != "a" || len(l.Ptrs) != 2 || l.Ptrs[0] != nil || l.Ptrs[1].N != 1 || l.Pair[1].N != 2 || l.Other != 7 {
		t.Errorf("decoded %+v", l)
	}
	var a partialAudit
	if err := domain.DecodeStrictBusPartial([]byte(`{"id":"e","type":"t","kid":"k","data":{"stream":"S","stream_seq":4,"requested_at":"2031-05-06T07:00:00Z","request_id":"r","session":{}}}`), &a, 0); err != nil {
		t.Fatal(err)
	}
	if a.ID != "e" || a.Type != "t" || a.KID != "k" || a.Data.Stream != "S" || a.Data.StreamSeq != 4 || a.Data.RequestID != "r" || a.Data.RequestedAt.IsZero() {
		t.Errorf("decoded %+v", a)
	}
	var e partialEmbedded
	if err := domain.DecodeStrictBusPartial([]byte(`{"stream":"S","stream_seq":4,"request_id":"r"}`), &e, 0); err != nil {
		t.Fatal(err)
	}
	if e.Stream != "S" || e.partialPosition.Stream != "" || e.StreamSeq != 4 || e.PartialMore == nil || e.RequestID != "r" {
		t.Errorf("embedded: %+v", e)
	}
	if err := domain.DecodeStrictBusPartial([]byte(`{"stream_seq":4,"Request_ID":"r"}`), &partialEmbedded{}, 0); err == nil || !strings.Contains(err.Error(), "only by case") {
		t.Errorf("a variant of an embedded field's name: %v", err)
	}
	// Not a pointer.
	if err := domain.DecodeStrictBusPartial([]byte(`{}`), partialSession{}, 0); err == nil {
		t.Error("decoding into a struct value was not refused")
	}
	// A refusal quotes no value.
	const secret = "c2VjcmV0LWtleS1tYXRlcmlhbA"
	for _, data := range []string{`{"session_revision":"` + secret + `"}`, `{"session":{"session_id":"` + secret + `"}} "` + secret + `"`} {
		if err := domain.DecodeStrictBusPartial([]byte(data), &partialSession{}, 0); err == nil || strings.Contains(err.Error(), secret[:8]) {
			t.Errorf("%.40s...: %v", data, err)
		}
	}
}

// TestDecodeStrictBusPartialFoldsAsEncodingJSON: every name encoding/json
// would match to a field without being the field's name (each letter
// replaced by each other rune of its case-folding orbit, as bytes.EqualFold
// compares) is refused, not read and not skipped.
func TestDecodeStrictBusPartialFoldsAsEncodingJSON(t *testing.T) {
	t.Parallel()
	fields := []string{"session", "session_revision"}
	n := 0
	for _, field := range fields {
		for i, c := range field {
			for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
				name := field[:i] + string(r) + field[i+1:]
				data := fmt.Sprintf(`{%q:{}}`, name)
				if field == "session_revision" {
					data = fmt.Sprintf(`{%q:1}`, name)
				}
				var viaJSON partialSession
				if json.Unmarshal([]byte(data), &viaJSON) != nil || (viaJSON.Session == nil && viaJSON.SessionRevision == 0) {
					t.Errorf("%q: encoding/json does not match it to %q (the test's premise)", name, field)
				}
				err := domain.DecodeStrictBusPartial([]byte(data), &partialSession{}, 0)
				if err == nil || !strings.Contains(err.Error(), "only by case") {
					t.Errorf("%q: %v, want it refused as a variant of %q", name, err, field)
				}
				n++
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d variants tried", n)
	}
}

// partialCostLimit is how large the cost shapes are: a quarter of the
// bus's limit, enough to show a cost per byte, and quick.
var partialCostLimit = domain.MaxBusJSONBytes / 4

// fillTo returns head + n repetitions of unit + tail, n as large as fits
// in partialCostLimit bytes.
func fillTo(head, unit, tail string) []byte {
	n := (partialCostLimit - len(head) - len(tail)) / len(unit)
	return []byte(head + strings.Repeat(unit, n) + tail)
}

// fillListTo is fillTo for a comma-separated list.
func fillListTo(head, unit, tail string) []byte {
	n := (partialCostLimit - len(head) - len(tail) + 1) / (len(unit) + 1)
	return []byte(head + strings.TrimSuffix(strings.Repeat(unit+",", n), ",") + tail)
}

// manyMembers fills head...tail with distinct members made by member(i).
func manyMembers(head, tail string, member func(i int) string) []byte {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; ; i++ {
		m := member(i)
		if i > 0 {
			m = "," + m
		}
		if b.Len()+len(m)+len(tail) > partialCostLimit {
			break
		}
		b.WriteString(m)
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// twoLetterMembers is an object of every member named by two ASCII
// letters or digits: the shortest members with distinct names.
func twoLetterMembers() []byte {
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var members []string
	for _, a := range chars {
		for _, b := range chars {
			members = append(members, `"`+string(a)+string(b)+`":0`)
		}
	}
	return []byte("{" + strings.Join(members, ",") + "}")
}

type partialShape struct {
	name    string
	data    []byte
	into    func() any
	refused bool
}

func partialShapes() []partialShape {
	session := func() any { return &partialSession{} }
	list := func() any { return &partialList{} }
	audit := func() any { return &partialAudit{} }
	const head = `{"session":{"session_id":"s"},"x":`
	return []partialShape{
		// Unknown members: names kept for the duplicate check.
		{name: "many unknown members", data: manyMembers(`{`, `}`, func(i int) string { return fmt.Sprintf(`"%x":0`, i) }), into: session},
		{name: "many unknown members inside session", data: manyMembers(`{"session":{`, `}}`, func(i int) string { return fmt.Sprintf(`"%x":0`, i) }), into: session},
		{name: "every two-letter unknown member", data: twoLetterMembers(), into: session},
		{name: "many unknown members as long as fields", data: manyMembers(`{`, `}`, func(i int) string { return fmt.Sprintf(`"%07x":0`, i) }), into: session},
		{name: "many non-ASCII unknown members", data: manyMembers(`{`, `}`, func(i int) string { return fmt.Sprintf(`"é%x":0`, i) }), into: session},
		{name: "many fullwidth unknown members", data: manyMembers(`{`, `}`, func(i int) string { return fmt.Sprintf(`"ｓ%x":0`, i) }), into: session},
		{name: "many escaped unknown members", data: manyMembers(`{`, `}`, func(i int) string { return fmt.Sprintf(`"\u0078%x":0`, i) }), into: session},
		{name: "one long unknown name", data: fillTo(`{"`, "k", `":0}`), into: session},
		{name: "one long non-ASCII unknown name", data: fillTo(`{"`, "é", `":0}`), into: session},
		{name: "one long name of ligatures", data: fillTo(`{"`, "\ufdfa", `":0}`), into: session},
		{name: "one unknown member repeated", data: fillListTo(`{`, `"a":0`, `}`), into: session, refused: true},
		{name: "a field repeated", data: fillListTo(`{`, `"session_revision":0`, `}`), into: session, refused: true},
		{name: "a case variant repeated", data: fillListTo(`{`, `"Session":0`, `}`), into: session, refused: true},

		// Skipped values.
		{name: "many small arrays skipped", data: fillListTo(head+`[`, "[]", "]}"), into: session},
		{name: "many tiny values skipped", data: fillListTo(head+`[`, `0,"",true,null,[],{}`, "]}"), into: session},
		{name: "many keys in a skipped object", data: manyMembers(head+`{`, `}}`, func(i int) string { return fmt.Sprintf(`"%x":0`, i) }), into: session},
		{name: "deepest legal nesting, repeated", data: fillListTo(head+`[`, strings.Repeat("[", 60)+strings.Repeat("]", 60), "]}"), into: session},
		{name: "open arrays", data: fillTo(head, "[", ""), into: session, refused: true},
		{name: "a long string full of escapes", data: fillTo(head+`"`, `\u00e9`, `"}`), into: session},

		// Values read.
		{name: "a long session id", data: fillTo(`{"session":{"session_id":"`, "a", `"}}`), into: session},
		{name: "a long session id of escapes", data: fillTo(`{"session":{"session_id":"`, `\"`, `"}}`), into: session},
		{name: "a long number", data: fillTo(`{"session_revision":1`, "0", `}`), into: session, refused: true},
		{name: "many list elements", data: fillListTo(`{"items":[`, `{}`, `]}`), into: list},
		{name: "many list elements with a member", data: fillListTo(`{"items":[`, `{"name":""}`, `]}`), into: list},
		{name: "many nulls in a list of pointers", data: fillListTo(`{"ptrs":[`, `null`, `]}`), into: list},
		{name: "many elements past an array's length", data: fillListTo(`{"pair":[`, `{}`, `]}`), into: list},
		{name: "many numbers for a list's structs", data: fillListTo(`{"items":[`, `0`, `]}`), into: list, refused: true},
		{name: "whitespace between every token", data: fillTo(`{"data":{"stream":"s"`, " \n\t", `,"stream_seq":1}}`), into: audit},
	}
}

// partialAllocs reports the bytes and objects one call of f allocates,
// averaged over runs (one P, after a warm-up call).
func partialAllocs(runs int, f func()) (bytes, objects float64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs),
		float64(after.Mallocs-before.Mallocs) / float64(runs)
}

// Bounds on what DecodeStrictBusPartial allocates per byte of data. The
// most bytes go to a list of the smallest elements read into a typed slice
// ("many list elements": a 16-byte struct for each 3-byte "{},", the slice
// grown by a quarter at a time, 28 B/B) and to the map of the names of
// unknown members kept for the duplicate check (17 B/B for the shortest
// members); the most objects to escaped names, each unescaped on its own
// (0.27 per byte). Otherwise a decode allocates one copy of data and a few
// objects. A cost that grew with the data would show as thousands.
const (
	maxPartialBytesPerByte   = 40
	maxPartialObjectsPerByte = 0.5
)

// TestDecodeStrictBusPartialCostIsLinear: decoding any data up to the
// bus's limit costs memory linear in its size, with a small constant.
// Allocations are counted, not time.
func TestDecodeStrictBusPartialCostIsLinear(t *testing.T) {
	// Not parallel: the counts are process-wide.
	for _, s := range partialShapes() {
		if len(s.data) > partialCostLimit {
			t.Fatalf("%s: %d bytes, over the limit", s.name, len(s.data))
		}
		err := domain.DecodeStrictBusPartial(s.data, s.into(), 0)
		if (err != nil) != s.refused {
			t.Errorf("%s: err = %v, want refused %v", s.name, err, s.refused)
		}
		bytes, objects := partialAllocs(2, func() { _ = domain.DecodeStrictBusPartial(s.data, s.into(), 0) })
		perByte, objPerByte := bytes/float64(len(s.data)), objects/float64(len(s.data))
		t.Logf("%-45s %8d B %10.0f B alloc %6.2f B/B %8.0f allocs %.4f allocs/B err=%v", s.name, len(s.data), bytes, perByte, objects, objPerByte, err)
		if perByte > maxPartialBytesPerByte || objPerByte > maxPartialObjectsPerByte {
			t.Errorf("%s: %.0f bytes and %.0f objects for %d bytes (%.2f B/B, %.3f allocs/B), over %d B/B or %.2f allocs/B",
				s.name, bytes, objects, len(s.data), perByte, objPerByte, maxPartialBytesPerByte, maxPartialObjectsPerByte)
		}
	}
}

// FuzzDecodeStrictBusPartial: what DecodeStrictBusPartial accepts,
// encoding/json decodes to the same value (with no variant or duplicate
// of a member it reads, the two agree), and what encoding/json finds
// malformed, it refuses. Unknown members, whitespace and escapes are where

// TestDecodeStrictBusPartialFieldConflicts: where embedded structs give
// two fields one name, the partial decoder reads into the field
// encoding/json reads into, and ignores a member encoding/json ignores.
func TestDecodeStrictBusPartialFieldConflicts(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"X":1,"t":2,"W":3,"y":4,"z":5,"n":6}`,
		`{"W":3}`, `{"z":5}`, `{"n":6}`, `{"X":1,"x":2}`, `{"t":1,"T":2}`,
	} {
		got, want := newPartialConflicts(), newPartialConflicts()
		if err := domain.DecodeStrictBusPartial([]byte(data), got, 0); err != nil {
			t.Errorf("%s: %v", data, err)
			continue
		}
		if err := json.Unmarshal([]byte(data), want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded to %+v, encoding/json to %+v", data, got, want)
		}
	}
	c := newPartialConflicts()
	if err := domain.DecodeStrictBusPartial([]byte(`{"X":1,"t":2,"W":3,"y":4,"z":5,"n":6}`), c, 0); err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(c).Elem()
	a, b := v.Field(0).Interface().(PartialA), v.Field(1).Interface().(PartialB)
	cycle := v.Field(2).Interface().(*PartialCycle)
	if a.X != 0 || b.X != 0 || a.T != 0 || b.T != 0 || a.W != 3 || b.W != 0 || a.Y != 0 || b.Y != 0 ||
		a.Z != 5 || b.Z != 0 || cycle == nil || cycle.N != 6 || cycle.PartialCycle != nil {
		t.Errorf("decoded %+v", c)
	}
	// A variant of a hidden name is no field's: unknown, not refused.
	if err := domain.DecodeStrictBusPartial([]byte(`{"x":1,"Y":2}`), c, 0); err != nil {
		t.Errorf("variant of a hidden name: %v", err)
	}
	if err := domain.DecodeStrictBusPartial([]byte(`{"w":1}`), c, 0); err == nil || !strings.Contains(err.Error(), "only by case") {
		t.Errorf("variant of a field that won: %v", err)
	}
}

// the walk, which finds values by itself, could go astray.
func FuzzDecodeStrictBusPartial(f *testing.F) {
	for _, seed := range []string{
		partialGood,
		`{"session":{"session_id":"s"},"session_revision":1}`,
		" {\n \"x\" : [ 1 , { \"a\" : \"}\" } ] ,\t\"session\" : { \"session_id\" : \"s\\\"}\" } } ",
		`{"\u0073ession":{"session_\u0069d":"\u00e9"},"x":"\\","y":-1.5e3,"z":[true,false,null]}`,
		`{"items":[{"name":"a","x":{}},null,{}],"ptrs":[null,{"N":1}],"pair":[{"N":1},{"N":2},{"N":3}],"other":7}`,
		`{"id":"e","type":"t","data":{"stream":"S","stream_seq":4,"requested_at":"2031-05-06T07:00:00Z","request_id":"r"}}`,
		`{"session":null,"session_revision":null}`,
		`{"X":1,"t":2,"W":3,"y":4,"z":5,"n":6,"w":7}`,
		`{"Session":{}}`, `{"x":1,"x":2}`, `[]`, `{`, `{} {}`, `"x"`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, into := range []func() any{
			func() any { return &partialSession{} },
			func() any { return &partialAudit{} },
			func() any { return &partialList{} },
			func() any { return &partialEmbedded{} },
			newPartialConflicts,
		} {
			got, want := into(), into()
			err := domain.DecodeStrictBusPartial(data, got, 0)
			wantErr := json.Unmarshal(data, want)
			if err == nil {
				if wantErr != nil {
					t.Fatalf("%T: accepted %q, which encoding/json refuses: %v", got, data, wantErr)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%T: %q decoded to\n%+v\nencoding/json:\n%+v", got, data, got, want)
				}
			}
			if !json.Valid(data) && err == nil {
				t.Fatalf("%T: accepted %q, which is not JSON", got, data)
			}
		}
	})
}
