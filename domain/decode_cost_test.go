package domain_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// costShape is one payload built to cost the decoder as much as 64 KiB
// can: DecodeStrict into into, then (when it is accepted) the command's
// Validate, as the worker runs them.
type costShape struct {
	name    string
	payload []byte
	into    func() validator
	// wantMsg, when set, is a substring of the refusal's message: the
	// payload must be refused with invalid_request.
	wantMsg string
}

type validator interface{ validate() error }

type attestInto struct{ domain.AttestRequest }

func (a *attestInto) validate() error { _, err := a.Validate(); return err }

type profileInto struct{ domain.ProfileCommand }

func (p *profileInto) validate() error { return p.Validate() }

type userInto struct{ domain.UserCommand }

func (u *userInto) validate() error {
	if err := u.Validate(); err != nil || u.User == nil {
		return err
	}
	_, err := domain.NewUser(*u.User, 1, testNow, testNow)
	return err
}

// decodeCostLimit is how large costShapes makes each shape: as near it as
// the shape allows, never over.
var decodeCostLimit = domain.MaxPayloadBytes

// fill returns head + n repetitions of unit + tail with n as large as fits
// in decodeCostLimit bytes.
func fill(head, unit, tail string) []byte {
	n := (decodeCostLimit - len(head) - len(tail)) / len(unit)
	return []byte(head + strings.Repeat(unit, n) + tail)
}

// fillList is fill for a comma-separated list: head, n units joined by
// ",", tail.
func fillList(head, unit, tail string) []byte {
	n := (decodeCostLimit - len(head) - len(tail) + 1) / (len(unit) + 1)
	return []byte(head + strings.TrimSuffix(strings.Repeat(unit+",", n), ",") + tail)
}

// nest returns depth levels of open around inner, closed by close.
func nest(open, inner, close string, depth int) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

const attestHead = `{"request_id":"r","profile_id":"p","token":"t","session_custom_claims":`

func costShapes() []costShape {
	attest := func() validator { return &attestInto{} }
	profile := func() validator { return &profileInto{} }
	user := func() validator { return &userInto{} }
	deepest := domain.MaxJSONDepth - 2 // levels legal below the request object and the claims object
	tooDeep := "nests objects and arrays deeper than"
	return []costShape{
		// The regression: 30,000 unclosed arrays inside the claims.
		{name: "30000 open arrays in the claims (the regression)", payload: []byte(attestHead + strings.Repeat("[", 30000)), into: attest, wantMsg: tooDeep},
		{name: "open arrays up to 64 KiB", payload: fill(attestHead, "[", ""), into: attest, wantMsg: tooDeep},
		{name: "closed arrays nested 32000 deep", payload: []byte(attestHead + nest("[", "", "]", (decodeCostLimit-len(attestHead)-1)/2) + "}"), into: attest, wantMsg: tooDeep},
		{name: "open objects up to 64 KiB", payload: fill(attestHead, `{"a":`, ""), into: attest, wantMsg: tooDeep},
		{name: "open arrays of objects up to 64 KiB", payload: fill(attestHead, `[{"":`, ""), into: attest, wantMsg: tooDeep},
		{name: "one level too deep", payload: []byte(attestHead + "{\"a\":" + nest("[", "", "]", deepest+1) + "}}"), into: attest, wantMsg: tooDeep},
		{name: "open arrays at the top level", payload: fill(`{`, "[", ""), into: attest, wantMsg: tooDeep},
		{name: "open arrays in a typed member", payload: fill(`{"op":"upsert","profile":{"public_keys":`, "[", ""), into: profile, wantMsg: tooDeep},
		{name: "open objects in a typed member", payload: fill(`{"op":"upsert","user":{"emails":[`, `{"email":`, ""), into: user, wantMsg: tooDeep},

		// Legal depths, repeated as often as fits.
		{name: "deepest legal arrays, repeated", payload: fillList(attestHead+`{"a":[`, nest("[", "", "]", deepest-1), "]}}"), into: attest},
		{name: "deepest legal objects, repeated", payload: fillList(attestHead+`{"a":[`, nest(`{"a":`, "0", "}", deepest-1), "]}}"), into: attest},
		{name: "many small arrays in the claims", payload: fillList(attestHead+`{"a":[`, "[]", "]}}"), into: attest},
		{name: "many empty objects in the claims", payload: fillList(attestHead+`{"a":[`, "{}", "]}}"), into: attest},
		{name: "many tiny numbers in the claims", payload: fillList(attestHead+`{"a":[`, "0", "]}}"), into: attest},
		{name: "many tiny values of every kind", payload: fillList(attestHead+`{"a":[`, `0,"",true,null,[],{}`, "]}}"), into: attest},

		// Member names.
		{name: "many keys in the claims", payload: manyKeys(attestHead+`{`, "}}"), into: attest},
		{name: "one key repeated in the claims", payload: fillList(attestHead+`{`, `"a":0`, "}}"), into: attest},
		{name: "one long key in the claims", payload: longKey(attestHead+`{"`, `":0}}`), into: attest},
		{name: "one long unknown member", payload: longKey(`{"`, `":0}`), into: attest, wantMsg: "unknown field"},
		{name: "a known member repeated", payload: fillList(`{`, `"request_id":"r"`, "}"), into: attest, wantMsg: "sent twice"},
		{name: "many unknown members", payload: manyKeys(`{`, `}`), into: attest, wantMsg: "unknown field"},
		{name: "deep objects of unknown members", payload: fill(`{"profile_id":"p","token":"t","x":`, `{"x":`, ""), into: attest, wantMsg: tooDeep},
		{name: "long key in a typed nested member", payload: longKey(`{"op":"upsert","profile":{"attribute_mapping":{"`, `":""}}}`), into: profile, wantMsg: "unknown field"},

		// Typed lists walked member by member.
		{name: "many public keys", payload: fillList(`{"op":"upsert","profile":{"public_keys":[`, `""`, "]}}"), into: profile},
		{name: "many empty emails", payload: fillList(`{"op":"upsert","user":{"emails":[`, "{}", "]}}"), into: user},
		{name: "many emails with one member", payload: fillList(`{"op":"upsert","user":{"emails":[`, `{"email":""}`, "]}}"), into: user},
		{name: "many nulls where emails go", payload: fillList(`{"op":"upsert","user":{"emails":[`, `null`, "]}}"), into: user},
		{name: "many numbers where emails go", payload: fillList(`{"op":"upsert","user":{"emails":[`, `0`, "]}}"), into: user, wantMsg: "must be an object"},
		{name: "many arrays where emails go", payload: fillList(`{"op":"upsert","user":{"emails":[`, `[]`, "]}}"), into: user, wantMsg: "must be an object"},
		{name: "an object of many members where emails go", payload: fillList(`{"op":"upsert","user":{"emails":{`, `"a":0`, "}}}"), into: user, wantMsg: "must be an array"},
		{name: "many emails with escaped names", payload: fillList(`{"op":"upsert","user":{"emails":[`, `{"\u0065mail":"","\u0076erified":null}`, "]}}"), into: user},
		{name: "many full emails", payload: fillList(`{"op":"upsert","user":{"emails":[`, `{"email":"","verified":true}`, "]}}"), into: user},

		// Strings.
		{name: "token full of unicode escapes", payload: fill(`{"profile_id":"p","token":"`, `\u00e9`, `"}`), into: attest},
		{name: "token full of short escapes", payload: fill(`{"profile_id":"p","token":"`, `\"`, `"}`), into: attest},
		{name: "token full of surrogate pairs", payload: fill(`{"profile_id":"p","token":"`, `\ud83d\ude00`, `"}`), into: attest},
		{name: "claims string full of escapes", payload: fill(attestHead+`{"a":"`, `\\`, `"}}`), into: attest},
		{name: "brackets inside a string", payload: fill(`{"profile_id":"p","token":"`, `[{`, `"}`), into: attest},
		{name: "escaped quotes before brackets", payload: fill(`{"profile_id":"p","token":"`, `\"[`, `"}`), into: attest},

		// Whitespace and numbers.
		{name: "whitespace between every token", payload: fill(attestHead+`{"a":[0`, " \n\t,0", "]}}"), into: attest},
		{name: "padded small claims", payload: fill(attestHead+`{"a":`, " ", "0}}"), into: attest},
		{name: "one long number", payload: fill(`{"profile_id":"p","token":"t","session_duration_minutes":1`, "0", "}"), into: attest, wantMsg: "must be int"},
		{name: "a long number in the claims", payload: fill(attestHead+`{"a":1`, "0", "}}"), into: attest},
	}
}

// manyKeys fills head...tail with distinct short keys.
func manyKeys(head, tail string) []byte {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; ; i++ {
		member := fmt.Sprintf(`"%x":0`, i)
		if i > 0 {
			member = "," + member
		}
		if b.Len()+len(member)+len(tail) > decodeCostLimit {
			break
		}
		b.WriteString(member)
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// longKey is head + one key as long as fits + tail.
func longKey(head, tail string) []byte { return fill(head, "k", tail) }

// decodeCost runs the worker's decoding of one payload: DecodeStrict, then
// the command's validation when it decoded.
func decodeCost(s costShape) (decodeErr, validateErr error) {
	v := s.into()
	if err := domain.DecodeStrict(s.payload, v); err != nil {
		return err, nil
	}
	return nil, v.validate()
}

// allocPerRun reports the bytes and objects allocated by one call of f,
// averaged over runs, measured like testing.AllocsPerRun (one P, after a
// warm-up call) but counting bytes too.
func allocPerRun(runs int, f func()) (bytes, objects float64) {
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

// Bounds on what decoding one payload allocates, per byte of it. They are
// set by encoding/json, which the decode uses and which is linear but not
// frugal: decoding a list of the smallest elements into a typed slice
// costs it up to 39 bytes per byte ("many empty emails": a 24-byte struct
// for each 3-byte "{},", the slice grown by a quarter at a time). What
// DecodeStrict adds on top is the nesting pre-pass and the name check
// (checkMemberNames), which allocate nothing but a refusal's message (and,
// for a member name with an escape, a buffer for it once per payload).
// Before the name check had a scanner of its own, its walk of
// encoding/json's tokens cost up to one object and 21 bytes per byte
// ("many nulls where emails go", 45 B/B in all then, 24 now). A cost that
// grew with the payload (a path string per level, as before) would show
// here as thousands of bytes per byte: 30,000 open arrays cost 976 MB.
const (
	maxBytesPerByte   = 64
	maxObjectsPerByte = 1.25
)

// TestDecodeCostIsLinear: decoding any payload costs memory linear in its
// size, with a small constant, and a payload nested too deep is refused as
// invalid_request before encoding/json reads it. Allocations are counted,
// not time: they do not depend on the machine.
func TestDecodeCostIsLinear(t *testing.T) {
	// Not parallel: the counts are process-wide.
	for _, s := range costShapes() {
		if len(s.payload) > domain.MaxPayloadBytes {
			t.Fatalf("%s: payload is %d bytes, over the limit", s.name, len(s.payload))
		}
		decodeErr, validateErr := decodeCost(s)
		if s.wantMsg != "" {
			if !errors.Is(decodeErr, domain.ErrInvalidRequest) {
				t.Errorf("%s: DecodeStrict = %v, want invalid_request", s.name, decodeErr)
			} else if msg := domain.AsError(decodeErr).Message; !strings.Contains(msg, s.wantMsg) {
				t.Errorf("%s: message %q does not mention %q", s.name, msg, s.wantMsg)
			}
		} else if decodeErr != nil {
			t.Errorf("%s: DecodeStrict = %v, want it accepted", s.name, decodeErr)
		}
		err := errors.Join(decodeErr, validateErr)
		var de *domain.Error
		if err != nil && (!errors.As(err, &de) || de.Status != 400) {
			t.Errorf("%s: err = %v, want a 400 refusal or none", s.name, err)
		}
		if de != nil && len(de.Message) > 256 {
			t.Errorf("%s: the refusal's message is %d bytes long: %.80s...", s.name, len(de.Message), de.Message)
		}
		bytes, objects := allocPerRun(5, func() { _, _ = decodeCost(s) })
		perByte, objPerByte := bytes/float64(len(s.payload)), objects/float64(len(s.payload))
		t.Logf("%-50s %6d B  %9.0f B alloc  %5.2f B/B  %6.0f allocs  %.4f allocs/B  err=%v",
			s.name, len(s.payload), bytes, perByte, objects, objPerByte, errCode(err))
		if perByte > maxBytesPerByte || objPerByte > maxObjectsPerByte {
			t.Errorf("%s: %.0f bytes and %.0f objects allocated for a %d-byte payload (%.2f B/B, %.3f allocs/B), over %d B/B or %.2f allocs/B",
				s.name, bytes, objects, len(s.payload), perByte, objPerByte, maxBytesPerByte, maxObjectsPerByte)
		}
	}
}

func errCode(err error) string {
	if err == nil {
		return "none"
	}
	if de := domain.AsError(err); de != nil {
		return de.Code
	}
	return err.Error()
}

// BenchmarkDecodeCost times each shape of TestDecodeCostIsLinear: MB/s
// should be of one order for all of them (time is not asserted anywhere;
// this is for looking).
func BenchmarkDecodeCost(b *testing.B) {
	for _, s := range costShapes() {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.payload)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = decodeCost(s)
			}
		})
	}
}
