package domain

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The types checkMemberNames is compared with its oracle on: the commands
// DecodeStrict reads (attest, profile, user), an event and the data of the
// events the view reads (mirrors of the handlers' types, which this
// package cannot import), the JWK set entry the worker shares, a list at
// the top, no type at all, and namesProbe, which has a field of each kind
// of type the walk treats apart.
var namesTypes = []reflect.Type{
	reflect.TypeFor[*AttestRequest](),
	reflect.TypeFor[*ProfileCommand](),
	reflect.TypeFor[*UserCommand](),
	reflect.TypeFor[*Event](),
	reflect.TypeFor[*namesProfileEventData](),
	reflect.TypeFor[*namesUserEventData](),
	reflect.TypeFor[*namesAttestEventData](),
	reflect.TypeFor[*namesSessionRevokedData](),
	reflect.TypeFor[*namesKVEnvelope](),
	reflect.TypeFor[*namesKVEntry](),
	reflect.TypeFor[*[]UserEmail](),
	reflect.TypeFor[*namesProbe](),
	nil,
}

// namesPosition mirrors handlers.Position, embedded in event data.
type namesPosition struct {
	Stream      string    `json:"stream,omitempty"`
	StreamSeq   uint64    `json:"stream_seq,omitempty"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// namesProfileEventData mirrors handlers.ProfileEventData.
type namesProfileEventData struct {
	ChangeID     string   `json:"change_id,omitempty"`
	Profile      *Profile `json:"profile,omitempty"`
	ProfileID    string   `json:"profile_id,omitempty"`
	StatusCode   int      `json:"status_code,omitempty"`
	ErrorType    string   `json:"error_type,omitempty"`
	ErrorMessage string   `json:"error_message,omitempty"`
	namesPosition
	ReplyRefused bool `json:"reply_refused,omitempty"`
}

// namesUserEventData mirrors handlers.UserEventData.
type namesUserEventData struct {
	ChangeID     string `json:"change_id,omitempty"`
	User         *User  `json:"user,omitempty"`
	UserID       string `json:"user_id,omitempty"`
	StatusCode   int    `json:"status_code,omitempty"`
	ErrorType    string `json:"error_type,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	namesPosition
	ReplyRefused bool `json:"reply_refused,omitempty"`
}

// namesAttestEventData mirrors handlers.AttestEventData.
type namesAttestEventData struct {
	RequestID       string   `json:"request_id"`
	ProfileID       string   `json:"profile_id,omitempty"`
	UserID          string   `json:"user_id,omitempty"`
	TokenID         string   `json:"token_id,omitempty"`
	TokenSHA256     string   `json:"token_sha256,omitempty"`
	Session         *Session `json:"session,omitempty"`
	SessionRevision int64    `json:"session_revision,omitempty"`
	StatusCode      int      `json:"status_code,omitempty"`
	ErrorType       string   `json:"error_type,omitempty"`
	ErrorMessage    string   `json:"error_message,omitempty"`
	namesPosition
	ReplyRefused bool `json:"reply_refused,omitempty"`
}

// namesSessionRevokedData mirrors handlers.SessionRevokedData.
type namesSessionRevokedData struct {
	SessionID       string   `json:"session_id"`
	UserID          string   `json:"user_id"`
	Session         *Session `json:"session"`
	SessionRevision int64    `json:"session_revision"`
}

// namesKVEnvelope and namesKVEntry mirror the worker's shared JWK set
// entry and its signed envelope.
type namesKVEnvelope struct {
	Entry json.RawMessage `json:"entry"`
	Sig   string          `json:"sig"`
}

type namesKVEntry struct {
	Raw       []byte        `json:"raw"`
	FetchedAt time.Time     `json:"fetched_at"`
	MaxAge    time.Duration `json:"max_age"`
}

type namesInner struct {
	A int            `json:"a"`
	B []string       `json:"b"`
	C map[string]any `json:"c"`
}

// namesText is a struct that decodes from text too.
type namesText struct {
	A int `json:"a"`
}

func (*namesText) UnmarshalText([]byte) error { return nil }

// namesTextList is a list of structs that decodes from text too.
type namesTextList []namesInner

func (*namesTextList) UnmarshalText([]byte) error { return nil }

type NamesEmbedded struct {
	EmbeddedField int `json:"embedded_field"`
}

type namesProbe struct {
	Inner    namesInner            `json:"inner"`
	PP       **namesInner          `json:"pp"`
	Arr      [2]namesInner         `json:"arr"`
	Nested   [][]namesInner        `json:"nested"`
	PtrList  []*namesInner         `json:"ptr_list"`
	Map      map[string]namesInner `json:"map"`
	Any      any                   `json:"any"`
	Text     namesText             `json:"text"`
	TextList namesTextList         `json:"text_list"`
	Secret   Secret                `json:"secret"`
	Time     time.Time             `json:"time"`
	Raw      json.RawMessage       `json:"raw"`
	Skipped  string                `json:"-"`
	Plain    int
	Dash     int    `json:"-,"`
	Naive    string `json:"naïve"`
	*NamesEmbedded
	Recursive *namesProbe `json:"recursive"`
}

// sameAsTokenWalk fails t unless checkMemberNames and its oracle agree on
// data read as typ: both nil, or both a *Error alike in every field.
func sameAsTokenWalk(t *testing.T, data []byte, typ reflect.Type) {
	t.Helper()
	want := checkMemberNamesTokens(data, typ)
	got := checkMemberNames(data, typ)
	if want == nil && got == nil {
		return
	}
	var wantE, gotE *Error
	if want == nil || got == nil || !errors.As(want, &wantE) || !errors.As(got, &gotE) || *wantE != *gotE {
		t.Fatalf("checkMemberNames(%q, %v)\n got %#v\nwant %#v (the token walk)", data, typ, got, want)
	}
}

// nestNames returns depth levels of open around inner, closed by close.
func nestNames(open, inner, close string, depth int) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// namesSeeds covers what the scanner must read as the token walk does:
// unknown, duplicate and escaped names, nesting, lists of structs, values
// of the wrong kind, JSON malformed at various points (before and after a
// refusal, in a value skipped and in one walked), unicode escapes and
// surrogates, bytes that are not UTF-8, whitespace, numbers, and deep
// nesting. Each seed is read as every one of namesTypes.
func namesSeeds() []string {
	long := strings.Repeat("k", 100)
	return []string{
		// The attest request.
		`{"request_id":"r-1","profile_id":"trusted-auth-token-profile-1","token":"eyJhbGciOiJFZERTQSJ9.e30.c2ln","session_duration_minutes":60,"session_custom_claims":{"plan":"pro","n":[1,2.5,-3e2,{"x":null}],"t":true,"f":false}}`,
		`{"profile_id":"p","token":"t","session_token":"s","session_jwt":null}`,
		`{"x":1}`, `{"profile_id":"p","x":1}`, `{"PROFILE_ID":"p"}`, `{"Token":"t"}`,
		`{"token":"a","token":"b"}`, `{"token":"a","\u0074oken":"b"}`, `{"\u0074\u006F\u006b\u0065\u006e":"t","x":1}`,
		`{"` + long + `":1}`, `{"token":"t","` + long + `é":1}`, `{"` + strings.Repeat("é", 40) + `":1}`,
		`{"` + strings.Repeat("a", 63) + `é":1}`, `{"` + strings.Repeat("a", 63) + `\u00e9":1}`,
		`{"\ud83d\ude00":1}`, `{"\ud800":1}`, `{"\udc00\ud800x":1}`, `{"\ud800\u0041":1}`, `{"\ud800\\u0041":1}`,
		`{"\ud83d\ud83d\ude00":1}`, `{"\uD83D\uDE00":1}`, `{"\ud800\udbff\udfff":1}`, `{"a\ud800":1}`,
		"{\"tok\xffen\":1}", "{\"tök\xc3\":1}", `{"tökén":1}`, "{\"\xef\xbf\xbd\":1}", "{\"\xed\xa0\x80\":1}",
		`{"a\nb":1}`, `{"a\/b\"c\\d":1}`, `{"\b\f\r\t":1}`, `{"\u0000":1}`, `{"":1}`,
		`{"a\x":1}`, `{"a\u12":1}`, `{"a\u12g4":1}`, "{\"a\x01\":1}", `{"abc`, `{"abc\`, `{"abc\u00`, `{"a\'":1}`,
		`{"x" 1}`, `{"x"`, `{"x":`, `{"token"`, `{"token" "t"}`, `{"token"::"t"}`, `{"token":}`, `{"token":"t"`, `{"token":"t" `,
		`{"token":"t",}`, `{"token":"t",,"x":1}`, `{"token":"t" "x":1}`, `{"token":"t"]`, `{"token":"t"}}`, `{"token":"t"} {"x":1}`,
		`{,"x":1}`, `{"token":"t",]`, `{"token":"t",1:2}`, `{1:2}`, `{:1}`, `{]`, `{}`, `{ }`, "\t{\n\"token\" :\r\"t\" , \"x\":1 }",
		`{"token":tru,"x":1}`, `{"token":truex,"x":1}`, `{"token":nul,"x":1}`, "{\"token\":\"t\x01\",\"x\":1}", `{"token":"t\q","x":1}`,
		`{"session_custom_claims":{"a":[1,2,}],"x":1}`, `{"session_custom_claims":{"a":1,}}`, `{"session_custom_claims":{"a" 1},"x":1}`,
		`{"session_custom_claims":{"a":[1 2]},"x":1}`, `{"session_custom_claims":{"a":1]},"x":1}`, `{"session_custom_claims":{1:1},"x":1}`,
		`{"session_custom_claims":[}],"x":1}`, `{"session_custom_claims":{},"session_custom_claims":[]}`, `{"session_custom_claims":{"a":{"b":[]}}}`,
		`{"session_duration_minutes":-0.5e+10,"x":1}`, `{"session_duration_minutes":01,"x":1}`, `{"session_duration_minutes":1.,"x":1}`,
		`{"session_duration_minutes":1e400,"x":1}`, `{"session_duration_minutes":-,"x":1}`, `{"session_duration_minutes":1x,"x":1}`,
		`{"session_duration_minutes":1E-7,"x":1}`, `{"session_duration_minutes":-0,"x":1}`, `{"session_duration_minutes":1e,"x":1}`,
		`{"session_duration_minutes":1e+,"x":1}`, `{"session_duration_minutes":.5,"x":1}`, `{"session_duration_minutes":+1,"x":1}`,
		`{"session_duration_minutes":1`, `{"session_duration_minutes":-`, `{"session_duration_minutes":0.`,
		`[]`, `null`, `"x"`, `1`, `1e400`, `-1e999`, `true`, `false`, ``, ` `, `{`, `}`, `]`, `[`, `nul`, `[{"x":1}]`, `"x`, `01`, `1x`,
		"\ufeff{}", "\x00", "{\x00}", "{\"x\":1\x00}", "\xff", `{"a":1}` + "\xff",
		`{"profile_id":"p","token":"t","session_custom_claims":{"a":` + nestNames("[", "0", "]", MaxJSONDepth+8) + `},"x":1}`,
		`{"session_custom_claims":` + nestNames(`{"a":`, "0", "}", 40) + `,"x":1}`,
		`{"session_custom_claims":` + strings.Repeat("[", 40) + `,"x":1}`,

		// Malformed in a walked list or object, then a refusal: the
		// refusal must not be reached.
		`{"user":{"emails":[{},]},"x":1}`, `{"user":{"emails":[{},],"x":1}}`, `{"user":{"emails":[,{}]},"x":1}`,
		`{"user":{"emails":[{} {}]},"x":1}`, `{"user":{"emails":[{}:{}]},"x":1}`, `{"user":{"emails":[{}}},"x":1}`,
		`{"user":{"emails":[{},,{}]},"x":1}`, `{"user":{"emails":[null,]},"x":1}`, `{"user":{"emails":[{"email":"a",}]},"x":1}`,
		`{"user":{"emails":[{"email":"a"]]},"x":1}`, `{"user":{"emails":[{"email" "a"}]},"x":1}`, `{"user":{"emails":[{"email"::"a"}]},"x":1}`,
		`{"user":{"emails":[{,"email":"a"}]},"x":1}`, `{"user":{"emails":[{"email":"a",,"verified":true}]},"x":1}`,
		`{"user":{"emails":[{"email":"a" "verified":true}]},"x":1}`, `{"user":{"emails":[{"email":}]},"x":1}`,
		`{"user":{"name":{"first_name":"a",},"x":1}}`, `{"user":{"name":{"first_name":"a"]},"x":1}`, `{"user":{"name":{"first_name" 1}},"x":1}`,
		`{"user":{"name":{,}},"x":1}`, `{"user":{,"x":1}}`, `{"user":{"name":{}"x":1}}`, `{"user":{"name":{}},"x":1`, `{"user":null,,"x":1}`,
		`{"user":nul,"x":1}`, `{"user":{"emails":nul},"x":1}`, `{"user":{"emails":[nul]},"x":1}`, `{"user":{"emails":[{}]]},"x":1}`,
		`{"profile":{"public_keys":["a",]},"x":1}`, `{"profile":{"attribute_mapping":{"email":1e400}},"x":1}`,
		`{"token":"t",,"x":1}`, `{"token":"t" "x":1}`, `{"token" "t","x":1}`, `{"token":,"x":1}`, `{"token":"t"],"x":1}`,
		`{"arr":[{},],"x":1}`, `{"nested":[[{}],],"x":1}`, `{"nested":[[{},]],"x":1}`, `{"ptr_list":[null,],"x":1}`,

		// The profile command.
		`{"op":"upsert","profile":{"profile_id":"p","name":"n","issuer":"i","audience":"a","jwks_url":"u","public_keys":["k1","k2"],"attribute_mapping":{"email":"email","token_id":"jti","external_user_id":"sub","role_ids":"roles"},"can_jit_provision":true,"max_token_lifetime_seconds":3600}}`,
		`{"op":"upsert","profile":{"attribute_mapping":{"emial":"e"}}}`, `{"op":"upsert","profile":{"attribute_mapping":{"email":"e","email":"f"}}}`,
		`{"profile":[]}`, `{"profile":[{"x":1}]}`, `{"profile":1}`, `{"profile":"x"}`, `{"profile":true}`, `{"profile":false}`, `{"profile":1e400}`,
		`{"profile":1e308}`, `{"profile":-1e309}`, `{"profile":1e-400}`, `{"profile":null}`, `{"profile":nul}`, `{"profile":tru}`, `{"profile":-}`,
		"{\"profile\":\"\x01\"}", `{"profile":"\u00zz"}`, `{"profile":1x}`, `{"profile":01}`, `{"profile":}`, `{"profile":,}`, `{"profile":]}`,
		`{"profile":{"attribute_mapping":[1]}}`, `{"profile":{"attribute_mapping":"x"}}`, `{"profile":{"public_keys":{"a":1},"x":1}}`,
		`{"profile":{"attribute_mapping":{"email":"e"},"attribute_mapping":{}}}`, `{"profile":{"x":1`, `{"profile":{"x"`, `{"profile":{`,
		`{"profile":{"name":"n"`, `{"profile":{"name":"n",`, `{"profile":{"name":"n",}`, `{"profile":{"name":"n"}`, `{"profile":{"name":"n"]`,
		`{"profile":{"attribute_mapping":{"email":"e",` + "\n" + `"role_IDS":"r"}}}`,

		// The user command.
		`{"op":"upsert","user":{"user_id":"u","emails":[{"email":"a@b","verified":true},{"email":"c@d"}],"name":{"first_name":"f","middle_name":"m","last_name":"l"},"status":"active","external_id":"x","trusted_metadata":{"a":[1,{"b":null}]}}}`,
		`{"user":{"emails":[{"x":1}]}}`, `{"user":{"emails":[{},{"email":"a","email":"b"}]}}`, `{"user":{"emails":[1]}}`, `{"user":{"emails":[[]]}}`,
		`{"user":{"emails":["s"]}}`, `{"user":{"emails":[null,{}]}}`, `{"user":{"emails":{"a":1}}}`, `{"user":{"emails":1}}`, `{"user":{"emails":[1e400]}}`,
		`{"user":{"emails":[,{}]}}`, `{"user":{"emails":[{},]}}`, `{"user":{"emails":[{} {}]}}`, `{"user":{"emails":[{}}}}`, `{"user":{"emails":[{"email":"a"},{"x"`,
		`{"user":{"emails":[{"\u0065mail":"","\u0076erified":null}]}}`, `{"user":{"emails":[{"EMAIL":""}]}}`, `{"user":{"emails":[ { } , { "email" : "" } ] }}`,
		`{"user":{"emails":[{}` + strings.Repeat(`,{}`, 20) + `,{"y":0}]}}`, `{"user":{"emails":[nul]}}`, `{"user":{"emails":[tru]}}`, `{"user":{"emails":[]}}`,
		`{"user":{"emails":[]],"x":1}}`, `{"user":{"emails":[}`, `{"user":{"emails":[`, `{"user":{"emails":[{}`, `{"user":{"emails":[{},`,
		`{"user":{"name":{"first_name":"a","FIRST_NAME":"b"}}}`, `{"user":{"name":{"first_name":"a","first_name":"b"}}}`, `{"user":{"name":[]}}`,
		`{"user":{"trusted_metadata":{"a":1,"a":2},"x":1}}`,

		// An event, and the data of the events the view reads.
		`{"specversion":"1.0","id":"e","source":"s","type":"tat.session.created","subject":"x","time":"2024-01-01T00:00:00Z","datacontenttype":"application/json","data":{"session":{"x":1}}}`,
		`{"specversion":"1.0","data":{},"enc":1}`, `{"data":{"a":[}}`, `{"data":null,"time":{"x":1},"x":1}`,
		`{"request_id":"r","session":{"session_id":"s","user_id":"u","started_at":"2024-01-01T00:00:00Z","roles":["a"],"custom_claims":{"a":1},"authentication_factors":[{"type":"t","delivery_method":"d","created_at":"2024-01-01T00:00:00Z","trusted_auth_token_factor":{"token_id":"t","profile_id":"p"}}]},"session_revision":3,"stream":"S","stream_seq":4,"requested_at":"2024-01-01T00:00:00Z"}`,
		`{"session":{"authentication_factors":[{"trusted_auth_token_factor":{"token_id":"t","extra":1}}]}}`,
		`{"session":{"authentication_factors":[{"trusted_auth_token_factor":[]}]}}`, `{"session":{"authentication_factors":[{"trusted_auth_token_factor":null},{"type":1,"type":2}]}}`,
		`{"session":{"authentication_factors":{}}}`, `{"session":[],"stream":"S"}`, `{"stream":"S","Stream":"T"}`, `{"stream":"S","stream":"T"}`,
		`{"profile":{"profile_id":"p","version":3,"created_at":"2024-01-01T00:00:00Z","attribute_mapping":{"x":1}}}`, `{"profile":{"keys":[]}}`,
		`{"user":{"user_id":"u","version":1,"emails":[{"email":"e"}],"updated_at":null}}`,
		`{"entry":{"raw":"eA==","fetched_at":"2024-01-01T00:00:00Z","max_age":1},"sig":"s"}`, `{"raw":"eA==","max_age":1e400,"x":1}`,
		`[{"email":"a"},{"x":1}]`, `[{"email":"a"}`, `[1]`, `{"email":"a"}`,

		// The probe: every kind of type the walk treats apart.
		`{"pp":{"a":1,"x":2}}`, `{"pp":null}`, `{"pp":[]}`, `{"arr":[{"a":1},{"x":1}]}`, `{"arr":[{},{},{"z":0}]}`, `{"arr":{}}`,
		`{"nested":[[{"a":1}],[{"y":2}]]}`, `{"nested":[{}]}`, `{"nested":[[1]]}`, `{"nested":[null,[null,{"a":1,"a":1}]]}`,
		`{"ptr_list":[null,{"a":1,"a":2}]}`, `{"map":{"k":{"x":1}}}`, `{"map":[]}`, `{"any":{"x":1}}`, `{"inner":{"c":{"x":1},"b":{"y":2},"d":3}}`,
		`{"text":"abc"}`, `{"text":{"x":1}}`, `{"text":1}`, `{"text":1e400}`, `{"text":[1]}`, `{"text":true}`, `{"text":"\u00"}`,
		`{"text_list":"abc"}`, `{"text_list":[{"x":1}]}`, `{"text_list":{}}`, `{"text_list":5}`,
		`{"secret":{"x":1}}`, `{"time":{"x":1}}`, `{"raw":{"x":1,"x":2}}`, `{"Plain":1,"plain":2}`, `{"-":1}`, `{"Skipped":1}`,
		`{"naïve":1}`, `{"na\u00efve":1}`, `{"na\u00efve":1,"naïve":2}`, `{"embedded_field":1,"embedded_field":2}`, `{"NamesEmbedded":{}}`,
		`{"recursive":{"recursive":{"x":1}}}`, `{"recursive":` + nestNames(`{"recursive":`, `{"inner":{"q":1}}`, "}", 40) + `}`,
		`{"recursive":` + nestNames(`{"recursive":`, `{"inner":{"q":1}}`, "", 40),
	}
}

// namesVariants returns data, each of its prefixes (JSON cut short at
// every point), and data with each of its first 120 bytes replaced in
// turn by a few that change its structure (JSON malformed, or made
// otherwise, at every point of the part the seeds vary in).
func namesVariants(data string) []string {
	out := []string{data}
	for i := range len(data) {
		out = append(out, data[:i])
		if i >= 120 {
			continue
		}
		for _, b := range []string{`"`, `,`, `}`, `]`, `\`, "\xff"} {
			out = append(out, data[:i]+b+data[i+1:])
		}
	}
	return out
}

// TestCheckMemberNamesMatchesTokenWalk compares the scanner with the token
// walk on every seed, each of its prefixes and single-byte changes, as
// each of the types; and on values nested at the bounds of the scanner
// encoding/json reads a skipped value with.
func TestCheckMemberNamesMatchesTokenWalk(t *testing.T) {
	n := 0
	for _, seed := range namesSeeds() {
		for i, data := range namesVariants(seed) {
			if i%sweepStride != 0 {
				continue
			}
			for _, typ := range namesTypes {
				sameAsTokenWalk(t, []byte(data), typ)
				n++
			}
		}
	}
	t.Logf("%d comparisons", n)

	// encoding/json reads a value nested at most 10,000 levels within
	// itself: a skipped value nested deeper is malformed, a walked one
	// (Token's) is not.
	for _, depth := range []int{127, 128, 129, maxScannerDepth - 1, maxScannerDepth, maxScannerDepth + 1} {
		for _, data := range []string{
			`{"session_custom_claims":` + nestNames("[", "", "]", depth) + `,"x":1}`,
			`{"session_custom_claims":` + nestNames(`{"a":`, "0", "}", depth) + `,"x":1}`,
			`{"session_custom_claims":` + nestNames(`[{"a":`, "0", "}]", depth/2) + `,"x":1}`,
			`{"session_custom_claims":` + nestNames("[", "", "]", depth) + `,"x":1]`,
			nestNames("[", "", "]", depth),
			`{"recursive":` + nestNames(`{"recursive":`, "null", "}", depth/20) + `,"x":1}`,
		} {
			for _, typ := range namesTypes {
				sameAsTokenWalk(t, []byte(data), typ)
			}
		}
	}
}

// TestCheckMemberNamesMatchesTokenWalkOnRandomJSON compares the scanner
// with the token walk on JSON made at random for each of namesTypes: its
// members mostly those of the type's fields (as they are, sometimes
// escaped or in another case), with values mostly of the fields' types,
// else of any kind, then often spoilt (cut short, a byte put in, a byte
// taken out). The byte-level fuzzer reaches such documents, deep in the
// types' structure, only slowly.
func TestCheckMemberNamesMatchesTokenWalkOnRandomJSON(t *testing.T) {
	others := []string{"x", "", "é", `\ud83d\ude00`, `\ud800`, `a\u0000`, strings.Repeat("n", 70)}
	r := rand.New(rand.NewPCG(1, 2))
	space := func(b *strings.Builder) {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n  "}[r.IntN(4)])
		}
	}
	name := func(fields *fieldSet) string {
		var n string
		if fields == nil || len(fields.names) == 0 || r.IntN(10) == 0 {
			n = others[r.IntN(len(others))]
		} else {
			n = fields.names[r.IntN(len(fields.names))]
		}
		switch r.IntN(10) {
		case 0: // the first letter escaped
			if n != "" && n[0] < 0x80 && n[0] != '\\' {
				n = fmt.Sprintf("\\u%04x", n[0]) + n[1:]
			}
		case 1:
			n = strings.ToUpper(n)
		}
		return `"` + n + `"`
	}
	var value func(b *strings.Builder, typ reflect.Type, depth int)
	object := func(b *strings.Builder, typ reflect.Type, depth int) {
		var fields *fieldSet
		if typ != nil && typ.Kind() == reflect.Struct {
			fields = structFields(typ)
		}
		b.WriteByte('{')
		for i := range r.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			space(b)
			n := name(fields)
			b.WriteString(n)
			space(b)
			b.WriteByte(':')
			var ft reflect.Type
			if fields != nil {
				var unquoted string
				if json.Unmarshal([]byte(n), &unquoted) == nil {
					if j, ok := fields.index[unquoted]; ok {
						ft = fields.types[j]
					}
				}
			}
			value(b, ft, depth+1)
		}
		space(b)
		b.WriteByte('}')
	}
	value = func(b *strings.Builder, typ reflect.Type, depth int) {
		for typ != nil && typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		space(b)
		defer space(b)
		if typ != nil && hasMemberNames(typ) && r.IntN(8) != 0 {
			switch {
			case r.IntN(12) == 0:
				b.WriteString("null")
			case typ.Kind() == reflect.Struct:
				object(b, typ, depth)
			default:
				b.WriteByte('[')
				for i := range r.IntN(4) {
					if i > 0 {
						b.WriteByte(',')
					}
					value(b, typ.Elem(), depth+1)
				}
				b.WriteByte(']')
			}
			return
		}
		switch k := r.IntN(10); {
		case k < 2 && depth < 12:
			object(b, nil, depth)
		case k < 4 && depth < 12:
			b.WriteByte('[')
			for i := range r.IntN(5) {
				if i > 0 {
					b.WriteByte(',')
				}
				value(b, nil, depth+1)
			}
			space(b)
			b.WriteByte(']')
		default:
			b.WriteString([]string{`"s"`, `"\u00e9\n"`, `"\ud83d\ude00"`, "\"\xff\"", `0`, `-1.5e3`, `1e400`, `12`, `true`, `false`, `null`, `"2024-01-01T00:00:00Z"`}[r.IntN(12)])
		}
	}
	const spoilers = `"{}[],:\ 0-en` + "\xff"
	n := 0
	for range 20000 / sweepStride {
		typ := namesTypes[r.IntN(len(namesTypes))]
		var b strings.Builder
		value(&b, typ, 0)
		data := []byte(b.String())
		switch r.IntN(4) {
		case 0:
			data = data[:r.IntN(len(data)+1)]
		case 1:
			i := r.IntN(len(data) + 1)
			data = append(data[:i:i], append([]byte{spoilers[r.IntN(len(spoilers))]}, data[i:]...)...)
		case 2:
			i := r.IntN(len(data))
			data = append(data[:i:i], data[i+1:]...)
		}
		for _, typ := range namesTypes {
			sameAsTokenWalk(t, data, typ)
			n++
		}
	}
	t.Logf("%d comparisons", n)
}

// TestCheckMemberNamesRefusals pins a few of the scanner's answers, so that
// a change the oracle shares (the type helpers, renderPath) shows too.
func TestCheckMemberNamesRefusals(t *testing.T) {
	attest := reflect.TypeFor[*AttestRequest]()
	user := reflect.TypeFor[*UserCommand]()
	for _, c := range []struct {
		data string
		typ  reflect.Type
		want string // "" for nil
	}{
		{`{"profile_id":"p","token":"t"}`, attest, ""},
		{`{"x":1}`, attest, `payload is not valid: unknown field "x"`},
		{`{"x" 1}`, attest, `payload is not valid: unknown field "x"`},
		{`{"token":"a","\u0074oken":"b"}`, attest, `payload is not valid: field "token" is sent twice`},
		{`{"\ud83d\ude00\ud800":1}`, attest, "payload is not valid: unknown field \"😀\ufffd\""},
		{"{\"a\xff\":1}", attest, "payload is not valid: unknown field \"a\ufffd\""},
		{`{"token":tru,"x":1}`, attest, ""},
		{`{"user":{"emails":[{},{"Email":""}]}}`, user, `payload is not valid: unknown field "user.emails[1].Email"`},
		{`{"user":{"emails":[{},1]}}`, user, `payload is not valid: field "user.emails[1]" must be an object`},
		{`{"user":{"emails":[{},1e400]}}`, user, ""},
		{`{"user":{"emails":{}}}`, user, `payload is not valid: field "user.emails" must be an array`},
		{`[]`, attest, `payload is not valid: the payload must be an object`},
	} {
		err := checkMemberNames([]byte(c.data), c.typ)
		var got string
		if err != nil {
			got = AsError(err).Message
		}
		if got != c.want {
			t.Errorf("checkMemberNames(%q) = %q, want %q", c.data, got, c.want)
		}
	}
}

// TestCheckMemberNamesAllocatesNothing: the scanner allocates nothing for
// a payload it accepts, but a buffer for escaped names (once per payload).
func TestCheckMemberNamesAllocatesNothing(t *testing.T) {
	for _, c := range []struct {
		data string
		typ  reflect.Type
		max  float64
	}{
		{string(benchAttestPayload()), reflect.TypeFor[*AttestRequest](), 0},
		{string(benchSessionEventData()), reflect.TypeFor[*namesAttestEventData](), 0},
		{namesSeeds()[0], reflect.TypeFor[*AttestRequest](), 0},
		{`{"op":"upsert","user":{"emails":[` + strings.Repeat(`{"\u0065mail":"","\u0076erified":null},`, 100) + `{}]}}`, reflect.TypeFor[*UserCommand](), 1},
		{`{"session_custom_claims":` + nestNames("[", "", "]", 500) + `}`, reflect.TypeFor[*AttestRequest](), 1}, // deeper than bitStack's inline words
	} {
		data := []byte(c.data)
		if err := checkMemberNames(data, c.typ); err != nil {
			t.Fatalf("%.40s...: %v", c.data, err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = checkMemberNames(data, c.typ) }); n > c.max {
			t.Errorf("%.40s...: %v allocations, want at most %v", c.data, n, c.max)
		}
	}
}

// FuzzCheckMemberNamesMatchesTokenWalk: for any input, as any of
// namesTypes, the scanner and the token walk give the same answer.
func FuzzCheckMemberNamesMatchesTokenWalk(f *testing.F) {
	for _, s := range namesSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range namesTypes {
			sameAsTokenWalk(t, data, typ)
		}
	})
}

// benchAttestPayload is an attest request as a publisher sends one: a
// signed token of about 900 bytes and a few custom claims.
func benchAttestPayload() []byte {
	b64 := base64.RawURLEncoding.EncodeToString
	header := b64([]byte(`{"alg":"EdDSA","typ":"JWT","kid":"2024-06-01-ed25519"}`))
	claims := b64([]byte(`{"iss":"https://issuer.example.com/tenants/acme","sub":"user-0f8e6d1c-2b3a-4c5d-9e8f-7a6b5c4d3e2f","aud":"project-live-5c1a2b3c","iat":1717243200,"exp":1717243500,"jti":"6a1f0b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b","email":"ada.lovelace@example.com","email_verified":true,"roles":["admin","billing","support"],"org":{"id":"org_1234","name":"Acme, Inc.","plan":"enterprise"},"amr":["pwd","mfa"]}`))
	sig := b64([]byte(strings.Repeat("\x5a\xa5", 32)))
	return fmt.Appendf(nil, `{"request_id":"7b0f3c2e-5d7c-4a55-9a8e-3f1f2b9f2c11","profile_id":"trusted-auth-token-profile-1","token":"%s.%s.%s","session_duration_minutes":60,"session_custom_claims":{"plan":"pro","org":{"id":"org_1234","name":"Acme, Inc.","roles":["admin","billing"]},"features":["sso","audit-log"],"seats":25,"trial":false}}`,
		header, claims, sig)
}

// benchSessionEventData is the data of a session.created event, as the
// view decodes it: a session with one factor.
func benchSessionEventData() []byte {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	data, err := json.Marshal(namesAttestEventData{
		RequestID: "7b0f3c2e-5d7c-4a55-9a8e-3f1f2b9f2c11", ProfileID: "trusted-auth-token-profile-1",
		UserID: "user-test-0f8e6d1c-2b3a-4c5d-9e8f-7a6b5c4d3e2f", TokenID: "6a1f0b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b",
		TokenSHA256: strings.Repeat("ab", 32), SessionRevision: 1,
		Session: &Session{
			SessionID: "session-test-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718", UserID: "user-test-0f8e6d1c-2b3a-4c5d-9e8f-7a6b5c4d3e2f",
			StartedAt: at, LastAccessedAt: at, ExpiresAt: at.Add(time.Hour), Roles: []string{"admin", "billing"},
			CustomClaims: map[string]any{"plan": "pro", "org": map[string]any{"id": "org_1234", "roles": []any{"admin", "billing"}}},
			AuthenticationFactors: []AuthenticationFactor{{
				Type: "trusted_auth_token", DeliveryMethod: "trusted_token_exchange", CreatedAt: at, UpdatedAt: at, LastAuthenticatedAt: at,
				TrustedAuthTokenFactor: &TrustedAuthTokenFactor{TokenID: "6a1f0b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b", ProfileID: "trusted-auth-token-profile-1"},
			}},
		},
		namesPosition: namesPosition{Stream: "TAT_ATTEST", StreamSeq: 123456, RequestedAt: at},
	})
	if err != nil {
		panic(err)
	}
	return data
}

// BenchmarkCheckMemberNames times checkMemberNames (scanner) against the
// token walk it replaced (tokens) on an attest request, on the event that
// carries a session (its data skipped whole) and on that data (walked).
func BenchmarkCheckMemberNames(b *testing.B) {
	data := benchSessionEventData()
	event, err := NewEvent("evt-1", EventSessionCreated, "session-1", time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), json.RawMessage(data))
	if err != nil {
		b.Fatal(err)
	}
	eventJSON, err := json.Marshal(event)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		typ  reflect.Type
	}{
		{"attest", benchAttestPayload(), reflect.TypeFor[*AttestRequest]()},
		{"event", eventJSON, reflect.TypeFor[*Event]()},
		{"session_event_data", data, reflect.TypeFor[*namesAttestEventData]()},
	} {
		for _, impl := range []struct {
			name  string
			check func([]byte, reflect.Type) error
		}{{"tokens", checkMemberNamesTokens}, {"scanner", checkMemberNames}} {
			b.Run(c.name+"/"+impl.name, func(b *testing.B) {
				if err := impl.check(c.data, c.typ); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(c.data)))
				b.ReportAllocs()
				for b.Loop() {
					_ = impl.check(c.data, c.typ)
				}
			})
		}
	}
}
