package domain

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Adversarial review of the byte scanner (nameScanner) against its oracle.

// TestReviewEquivalentNamesRefused: member names written differently that
// decode to the same name (or to no field) must be refused by the scanner,
// with the oracle's exact message.
func TestReviewEquivalentNamesRefused(t *testing.T) {
	cases := []struct {
		data string
		typ  reflect.Type
	}{
		{`{"op":"a","\u006fp":"b"}`, reflect.TypeFor[*UserCommand]()},
		{`{"\u006fp":"a","op":"b"}`, reflect.TypeFor[*UserCommand]()},
		{`{"\u006f\u0070":"a","\u006F\u0070":"b"}`, reflect.TypeFor[*UserCommand]()},
		{`{"user":{"emails":[{"email":"a","\u0065mail":"b"}]}}`, reflect.TypeFor[*UserCommand]()},
		{`{"user":{"emails":[{},{"email":"a","verified":true,"\u0076erified":false}]}}`, reflect.TypeFor[*UserCommand]()},
		{`{"user":{"trusted_metadata":{},"trusted\u005fmetadata":{}}}`, reflect.TypeFor[*UserCommand]()},
		{`{"user":{"name":{"first_name":"a","first\u005Fname":"b"}}}`, reflect.TypeFor[*UserCommand]()},
		{`{"profile":{"attribute_mapping":{"email":"a","emai\u006c":"b"}}}`, reflect.TypeFor[*ProfileCommand]()},
		{`{"profile":{"attribute_mapping":{"email":"a","EMAIL":"b"}}}`, reflect.TypeFor[*ProfileCommand]()},
		{`{"profile":{"attribute_mapping":{"Email":"a"}}}`, reflect.TypeFor[*ProfileCommand]()},
		{`{"profile":{"attribute_mapping":{"email\u0000":"a"}}}`, reflect.TypeFor[*ProfileCommand]()},
		{`{"token":"a","tok\/en":"b"}`, reflect.TypeFor[*AttestRequest]()},
		{`{"token":"a","\/token":"b"}`, reflect.TypeFor[*AttestRequest]()},
		// Kelvin sign K (U+212A) and long s (U+017F) fold to k/s in encoding/json.
		{`{"to\u212Aen":"a"}`, reflect.TypeFor[*AttestRequest]()},
		{"{\"to\u212aen\":\"a\"}", reflect.TypeFor[*AttestRequest]()},
		{"{\"\u017fession_jwt\":\"a\"}", reflect.TypeFor[*AttestRequest]()},
		// Invalid UTF-8, overlong forms, surrogates in UTF-8: all U+FFFD.
		{"{\"\xc1\xaf\x70\":1}", reflect.TypeFor[*UserCommand]()},
		{"{\"o\xc0\xf0\":1}", reflect.TypeFor[*UserCommand]()},
		{"{\"op\xed\xa0\x80\":1}", reflect.TypeFor[*UserCommand]()},
		{"{\"op\":\"a\",\"o\xe0\x81\xb0\":1}", reflect.TypeFor[*UserCommand]()},
		{`{"op\ud800":1}`, reflect.TypeFor[*UserCommand]()},
		{`{"op\udfff\ud800":1}`, reflect.TypeFor[*UserCommand]()},
		{`{"session":{"session_id":"a","session\u005Fid":"b"}}`, reflect.TypeFor[*namesAttestEventData]()},
		{`{"session":{"authentication_factors":[{},{"type":"a","\u0074ype":"b"}]}}`, reflect.TypeFor[*namesAttestEventData]()},
		{`{"session":{"authentication_factors":[{"trusted_auth_token_factor":{"x":1}}]}}`, reflect.TypeFor[*namesAttestEventData]()},
		{`{"stream":"a","\u0073tream":"b"}`, reflect.TypeFor[*namesAttestEventData]()}, // embedded Position
		{`{"profile":{"profile_id":"a","version":1,"profile\u005fid":"b"}}`, reflect.TypeFor[*namesProfileEventData]()},
		{`{"user":{"user_id":"a","version":1,"\u0075ser_id":"b"}}`, reflect.TypeFor[*namesUserEventData]()},
		{`{"id":"a","\u0069d":"b"}`, reflect.TypeFor[*Event]()},
		{`{"data":{},"d\u0061ta":{}}`, reflect.TypeFor[*Event]()},
		{`[{"email":"a"},{"email":"a","email":"b"}]`, reflect.TypeFor[*[]UserEmail]()},
		{`{"` + strings.Repeat(`\u0061`, 20000) + `":1}`, reflect.TypeFor[*AttestRequest]()},
		{`{"` + strings.Repeat("\xff", 30000) + `":1}`, reflect.TypeFor[*AttestRequest]()},
		{`{"` + strings.Repeat("é", 30000) + `":1}`, reflect.TypeFor[*AttestRequest]()},
		{`{"` + strings.Repeat(`\ud83d\ude00`, 5000) + `":1}`, reflect.TypeFor[*AttestRequest]()},
	}
	for _, c := range cases {
		sameAsTokenWalk(t, []byte(c.data), c.typ)
		if err := checkMemberNames([]byte(c.data), c.typ); err == nil {
			t.Errorf("%.80q as %v: accepted", c.data, c.typ)
		} else if testing.Verbose() {
			t.Logf("%.60q: %v", c.data, err)
		}
	}
}

// reviewPayloads are realistic accepted payloads for the real types.
func reviewPayloads() []struct {
	data []byte
	typ  reflect.Type
} {
	ev, err := NewEvent("id-1", "tat.session.created", "s", time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), json.RawMessage(benchSessionEventData()))
	if err != nil {
		panic(err)
	}
	evb, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return []struct {
		data []byte
		typ  reflect.Type
	}{
		{benchAttestPayload(), reflect.TypeFor[*AttestRequest]()},
		{benchSessionEventData(), reflect.TypeFor[*namesAttestEventData]()},
		{evb, reflect.TypeFor[*Event]()},
		{[]byte(`{"op":"upsert","user":{"user_id":"u","emails":[{"email":"a@b","verified":true},{"\u0065mail":"c@d","verified":false},null],"name":{"first_name":"A","last_name":"L"},"status":"active","trusted_metadata":{"k":[1,{"z":"\ud83d\ude00"}]}}}`), reflect.TypeFor[*UserCommand]()},
		{[]byte(`{"op":"upsert","profile":{"profile_id":"p","name":"n","issuer":"i","audience":"a","public_keys":["k"],"attribute_mapping":{"email":"email","token_id":"jti"},"can_jit_provision":true}}`), reflect.TypeFor[*ProfileCommand]()},
	}
}

// TestReviewTruncatedAndMutated: every prefix of realistic payloads, and
// each byte replaced by bytes that matter to the grammar, read as every
// type: no panic, the oracle's answer.
func TestReviewTruncatedAndMutated(t *testing.T) {
	subst := []byte{'"', '\\', ',', ':', '{', '}', '[', ']', 0, 0x80, 0xff, ' ', 'u', 'n', '0', '-', 'e', '.', 0x1f, 'E'}
	n := 0
	for _, p := range reviewPayloads() {
		if err := checkMemberNames(p.data, p.typ); err != nil {
			t.Fatalf("%s: %v", p.data, err)
		}
		for i := 0; i <= len(p.data); i += sweepStride {
			for _, typ := range namesTypes {
				sameAsTokenWalk(t, p.data[:i], typ)
				n++
			}
		}
		buf := make([]byte, len(p.data))
		for i := 0; i < len(p.data); i += sweepStride {
			for _, c := range subst {
				copy(buf, p.data)
				buf[i] = c
				sameAsTokenWalk(t, buf, p.typ)
				n++
				// also insert
				ins := append(append(append([]byte{}, p.data[:i]...), c), p.data[i:]...)
				sameAsTokenWalk(t, ins, p.typ)
				n++
			}
		}
	}
	t.Logf("%d comparisons", n)
}

type reviewShape struct {
	name string
	typ  reflect.Type
	make func(n int) []byte // about n bytes
}

func reviewShapes() []reviewShape {
	rep := func(pre, unit, sep, post string) func(int) []byte {
		return func(n int) []byte {
			k := n / (len(unit) + len(sep))
			parts := make([]string, k)
			for i := range parts {
				parts[i] = unit
			}
			return []byte(pre + strings.Join(parts, sep) + post)
		}
	}
	u := reflect.TypeFor[*UserCommand]()
	a := reflect.TypeFor[*AttestRequest]()
	return []reviewShape{
		{"emails", u, rep(`{"op":"x","user":{"emails":[`, `{"email":"a","verified":true}`, ",", `]}}`)},
		{"escaped emails", u, rep(`{"op":"x","user":{"emails":[`, `{"\u0065mail":"a","\u0076erified":true}`, ",", `]}}`)},
		{"nulls", u, rep(`{"op":"x","user":{"emails":[`, `null`, ",", `]}}`)},
		{"empty objects", u, rep(`{"op":"x","user":{"emails":[`, `{}`, ",", `]}}`)},
		{"dup at end", u, func(n int) []byte {
			return append(rep(`{"op":"x","user":{"emails":[`, `{"email":"a"}`, ",", `,`)(n), `{"email":"a","email":"b"}]}}`...)
		}},
		{"escapes in claims", a, rep(`{"session_custom_claims":"`, `\u0041`, "", `"}`)},
		{"high bytes in claims", a, rep(`{"session_custom_claims":"`, `é`, "", `"}`)},
		{"keys in claims", a, rep(`{"session_custom_claims":{`, `"k":[1,{"a":null}]`, ",", `}}`)},
		{"long unknown escaped name", a, rep(`{"`, `\u0061`, "", `":1}`)},
		{"long unknown name", a, rep(`{"`, `a`, "", `":1}`)},
		{"long number for struct", u, rep(`{"user":`, `1`, "", `}`)},
		{"long fraction for struct", u, rep(`{"user":0.`, `1`, "", `}`)},
		{"long number skipped", a, rep(`{"session_duration_minutes":`, `1`, "", `}`)},
		{"whitespace", a, rep(`{`, ` `, "", `}`)},
		{"deep skipped lists", a, rep(`{"session_custom_claims":[`, strings.Repeat("[", 200)+strings.Repeat("]", 200), ",", `]}`)},
	}
}

// BenchmarkCheckMemberNamesShapes: time per byte of each shape at 64 KiB
// and 1 MiB, to see that the cost is linear (ns/op divided by the size;
// a benchmark, not a test: timing on a shared machine asserts nothing).
//
//	go test -run '^$' -bench BenchmarkCheckMemberNamesShapes ./domain/
func BenchmarkCheckMemberNamesShapes(b *testing.B) {
	for _, sh := range reviewShapes() {
		for _, n := range []int{64 << 10, 1 << 20} {
			data := sh.make(n)
			b.Run(fmt.Sprintf("%s/%dKiB", strings.ReplaceAll(sh.name, " ", "_"), n>>10), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					_ = checkMemberNames(data, sh.typ)
				}
			})
		}
	}
}

// TestReviewAllocations: accepted payloads of every shape allocate at
// most once (the escaped-name buffer).
func TestReviewAllocations(t *testing.T) {
	for _, sh := range reviewShapes() {
		data := sh.make(64 << 10)
		if checkMemberNames(data, sh.typ) != nil {
			continue
		}
		if strings.HasPrefix(sh.name, "long number for struct") {
			// Left to the decoder (1e65535 is out of float64's range):
			// scalar() copies the number for ParseFloat, and ParseFloat's
			// error clones it: 3 allocations, once per payload.
			continue
		}
		if n := testing.AllocsPerRun(5, func() { _ = checkMemberNames(data, sh.typ) }); n > 1 {
			t.Errorf("%s: %v allocations per run", sh.name, n)
		}
	}
	for _, p := range reviewPayloads() {
		if n := testing.AllocsPerRun(20, func() { _ = checkMemberNames(p.data, p.typ) }); n > 1 {
			t.Errorf("%.40s: %v allocations per run", p.data, n)
		}
	}
}

// TestReviewWalkedDepthOfRealTypes: the walk recurses only through walked
// types, so its depth on the real types is bounded by the types, not by
// data; no real type is recursive, and each fits the inline path array.
func TestReviewWalkedDepthOfRealTypes(t *testing.T) {
	var depth func(t reflect.Type, seen map[reflect.Type]bool) int
	depth = func(t reflect.Type, seen map[reflect.Type]bool) int {
		t, walked := walkedType(t)
		if !walked {
			return 0
		}
		if seen[t] {
			return 1 << 20
		}
		seen[t] = true
		defer delete(seen, t)
		switch t.Kind() {
		case reflect.Slice, reflect.Array:
			return 1 + depth(t.Elem(), seen)
		}
		fs := structFields(t)
		if len(fs.types) > 32 {
			panic(t.String() + " has more fields than object's inline sent array")
		}
		m := 0
		for _, ft := range fs.types {
			m = max(m, depth(ft, seen))
		}
		return 1 + m
	}
	for _, typ := range namesTypes[:len(namesTypes)-2] {
		d := depth(typ, map[reflect.Type]bool{})
		t.Logf("%v: walked depth %d", typ, d)
		if d > MaxJSONDepth {
			t.Errorf("%v: walked depth %d", typ, d)
		}
	}
}

// TestReviewRandomNameSpellings: objects whose member names are field
// names spelled at random (escapes in either hex case, \/ and other
// escapes, case flips, bytes that are not UTF-8, surrogates, NUL), some
// sent twice, at every walked level of the real types: same answer as
// the oracle.
func TestReviewRandomNameSpellings(t *testing.T) {
	rng := newReviewRand()
	spell := func(name string) string {
		var b strings.Builder
		for _, r := range name {
			switch rng.IntN(14) {
			case 0:
				b.WriteString(`\u00` + strings.ToLower(hex2(byte(r))))
			case 1:
				b.WriteString(`\u00` + strings.ToUpper(hex2(byte(r))))
			case 2:
				b.WriteString(strings.ToUpper(string(r)))
			case 3:
				b.WriteString([]string{"\xff", "\xc0", "\xed\xa0\x80", `\ud800`, `\udc00`, `\u0000`, `\/`, "\xef\xbf\xbd", `\ufffd`, "é", `\u00e9`, `\b`}[rng.IntN(12)])
				b.WriteRune(r)
			default:
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	var obj func(typ reflect.Type, depth int) string
	obj = func(typ reflect.Type, depth int) string {
		typ, walked := walkedType(typ)
		if !walked || depth > 6 {
			return []string{`null`, `1`, `"s"`, `{}`, `[]`, `{"k":[1,{"x":2}]}`}[rng.IntN(6)]
		}
		if typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array {
			n := rng.IntN(3)
			parts := make([]string, n)
			for i := range parts {
				parts[i] = obj(typ.Elem(), depth+1)
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
		fs := structFields(typ)
		var parts []string
		for i, name := range fs.names {
			if rng.IntN(3) == 0 {
				continue
			}
			for range 1 + rng.IntN(2)*rng.IntN(2) {
				parts = append(parts, `"`+spell(name)+`":`+obj(fs.types[i], depth+1))
			}
		}
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		return "{" + strings.Join(parts, ",") + "}"
	}
	accepted, refused := 0, 0
	for i := 0; i < 30000; i++ {
		typ := namesTypes[rng.IntN(len(namesTypes)-2)]
		data := []byte(obj(typ, 0))
		sameAsTokenWalk(t, data, typ)
		if checkMemberNames(data, typ) == nil {
			accepted++
		} else {
			refused++
		}
	}
	t.Logf("accepted %d, refused %d", accepted, refused)
}

func hex2(c byte) string { const h = "0123456789abcdef"; return string([]byte{h[c>>4], h[c&15]}) }

func newReviewRand() *rand.Rand { return rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano()))) }

// TestReviewPlainRun: the 8-bytes-at-a-time scan ends where a byte-by-byte
// one does, for every byte value at every offset among ASCII neighbours.
func TestReviewPlainRun(t *testing.T) {
	naive := func(d []byte, i int) int {
		for ; i < len(d); i++ {
			if c := d[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				break
			}
		}
		return i
	}
	for _, fill := range []byte{'a', '!', '#', '[', ']', 0x7f, ' ', '~'} {
		for n := 0; n <= 24; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					d := make([]byte, n)
					for i := range d {
						d[i] = fill
					}
					d[pos] = byte(c)
					for start := 0; start <= n; start++ {
						if got, want := plainRun(d, start), naive(d, start); got != want {
							t.Fatalf("plainRun(%q, %d) = %d, want %d", d, start, got, want)
						}
					}
				}
			}
		}
	}
}
