package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	jwxjwk "github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tat-worker/attest/domain"
)

func TestParseJWKSFilters(t *testing.T) {
	t.Parallel()
	rsa2048 := rsaJWK(t, "rsa-2048", 2048)
	ec256 := ecJWK(t, "ec-256", elliptic.P256())
	ec384 := ecJWK(t, "ec-384", elliptic.P384())
	ec521 := ecJWK(t, "ec-521", elliptic.P521())
	ed := edJWK(t, "")
	edThumb, err := domain.JWKThumbprint(ed.pub)
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		kid  string
		algs []string
	}
	tests := []struct {
		name string
		key  jwk
		want *want // nil: ignored
	}{
		{"RSA 2048 without alg gets the RSA family", rsa2048,
			&want{"rsa-2048", []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}},
		{"RSA with alg gets exactly it", rsa2048.with("kid", "rsa-ps", "alg", "PS384"), &want{"rsa-ps", []string{"PS384"}}},
		{"RSA with use sig", rsa2048.with("kid", "rsa-sig", "use", "sig"), &want{"rsa-sig", domain.AlgsForKey(rsa2048.pub)}},
		{"alg-less P-256 gets ES256", ec256, &want{"ec-256", []string{"ES256"}}},
		{"alg-less P-384 gets ES384", ec384, &want{"ec-384", []string{"ES384"}}},
		{"P-521 with ES512", ec521.with("alg", "ES512"), &want{"ec-521", []string{"ES512"}}},
		{"key_ops with verify", ec256.with("kid", "ops", "key_ops", []string{"verify"}), &want{"ops", []string{"ES256"}}},
		{"Ed25519 without kid gets its thumbprint", ed, &want{edThumb, []string{"EdDSA"}}},
		{"use enc ignored", ec256.with("use", "enc"), nil},
		{"empty use ignored", ec256.with("use", ""), nil},
		{"key_ops without verify ignored", ec256.with("key_ops", []string{"encrypt"}), nil},
		{"oct ignored", jwk{fields: map[string]any{"kty": "oct", "kid": "hmac", "k": b64url([]byte("0123456789abcdef0123456789abcdef"))}}, nil},
		{"oct without k ignored", jwk{fields: map[string]any{"kty": "oct", "kid": "hmac", "alg": "HS256"}}, nil},
		{"RSA 1024 ignored", rsaJWK(t, "rsa-1024", 1024), nil},
		{"HS256 on an RSA key ignored", rsa2048.with("alg", "HS256"), nil},
		{"none on an EC key ignored", ec256.with("alg", "none"), nil},
		{"ES384 on a P-256 key ignored", ec256.with("alg", "ES384"), nil},
		{"RS256 on an EC key ignored", ec256.with("alg", "RS256"), nil},
		{"private member d ignored", ec256.with("d", b64url(make([]byte, 32))), nil},
		{"point not on the curve ignored", ec256.with("y", b64url(make([]byte, 32))), nil},
		{"short coordinate ignored", ec256.with("x", b64url(make([]byte, 31))), nil},
		{"padded base64 ignored", ec256.with("x", ec256.fields["x"].(string)+"="), nil},
		{"P-224 ignored", jwk{fields: map[string]any{"kty": "EC", "crv": "P-224", "x": "AA", "y": "AA"}}, nil},
		{"secp256k1 ignored", ec256.with("crv", "secp256k1"), nil},
		{"X25519 ignored", ed.with("crv", "X25519"), nil},
		{"even RSA exponent ignored", rsa2048.with("e", b64url([]byte{1, 0, 0})), nil},
		{"unknown kty ignored", jwk{fields: map[string]any{"kty": "PQ", "kid": "x"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A usable companion key keeps the set valid so the filter shows.
			companion := ecJWK(t, "companion", elliptic.P256())
			keys, err := ParseJWKS(setJSON(t, tc.key, companion))
			if err != nil {
				t.Fatalf("ParseJWKS: %v", err)
			}
			var got []domain.PublicKey
			for _, k := range keys {
				if k.KID != "companion" {
					got = append(got, k)
				}
			}
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("key accepted as %+v, want it ignored", got[0])
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d keys, want 1", len(got))
			}
			k := got[0]
			if k.KID != tc.want.kid || !slices.Equal(k.Algs, tc.want.algs) {
				t.Fatalf("got kid %q algs %v, want %q %v", k.KID, k.Algs, tc.want.kid, tc.want.algs)
			}
			if !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.key.pub) {
				t.Fatal("parsed key differs from the published one")
			}
			// Differential: jwx parses the key as served, whole, to the
			// same key; we may only refuse more.
			raw, err := json.Marshal(tc.key.fields)
			if err != nil {
				t.Fatal(err)
			}
			jk, err := jwxjwk.ParseKey(raw)
			if err != nil {
				t.Fatalf("we accepted a JWK jwk.ParseKey refuses: %v", err)
			}
			var pub any
			if err := jwxjwk.Export(jk, &pub); err != nil || !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatalf("jwx exports another key (%v)", err)
			}
		})
	}
}

// TestPublicSetReadByJWX: the set the fleet shares parses with jwk.Parse
// (its strict set parsing) to the same keys, and jwx's thumbprint of each
// is the one we compute.
func TestPublicSetReadByJWX(t *testing.T) {
	t.Parallel()
	keys := []jwk{
		rsaJWK(t, "rsa", 2048), ecJWK(t, "", elliptic.P256()), ecJWK(t, "p384", elliptic.P384()),
		ecJWK(t, "", elliptic.P521()), edJWK(t, ""), edJWK(t, "ed").with("use", "sig", "x5t", "ignored"),
	}
	ours, set, err := PublicSet(setJSON(t, keys...))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := jwxjwk.Parse(set)
	if err != nil {
		t.Fatalf("jwk.Parse refuses the shared set: %v", err)
	}
	if theirs.Len() != len(ours) {
		t.Fatalf("jwk.Parse reads %d keys, we %d", theirs.Len(), len(ours))
	}
	for i, k := range ours {
		jk, _ := theirs.Key(i)
		var pub any
		if err := jwxjwk.Export(jk, &pub); err != nil || !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatalf("key %d: jwx exports another key (%v)", i, err)
		}
		sum, err := jk.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := domain.JWKThumbprint(k.Key)
		if err != nil || b64url(sum) != tp {
			t.Fatalf("key %d: jwx thumbprint %s, ours %s (%v)", i, b64url(sum), tp, err)
		}
		if kid, _ := jk.KeyID(); kid != "" && kid != k.KID {
			t.Fatalf("key %d: jwx reads kid %q, we %q", i, kid, k.KID)
		}
	}
}

func TestParseJWKSRejectsSets(t *testing.T) {
	t.Parallel()
	enc := ecJWK(t, "enc", elliptic.P256()).with("use", "enc")
	many := make([]jwk, maxKeys+1)
	for i := range many {
		many[i] = ecJWK(t, fmt.Sprint(i), elliptic.P256())
	}
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"not JSON", []byte("<html>"), nil},
		{"array", []byte(`[]`), nil},
		{"no keys member", []byte(`{"kty":"EC"}`), nil},
		{"null keys", []byte(`{"keys":null}`), nil},
		{"empty keys", []byte(`{"keys":[]}`), ErrNoUsableKeys},
		{"only unusable keys", setJSON(t, enc), ErrNoUsableKeys},
		{"too many keys", setJSON(t, many...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseJWKS(tc.body)
			if err == nil {
				t.Fatalf("ParseJWKS = %d keys, want an error", len(keys))
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The error says why each key was skipped.
	_, err := ParseJWKS(setJSON(t, enc))
	if !strings.Contains(err.Error(), `use "enc"`) {
		t.Errorf("error %q does not say why the key was skipped", err)
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638 section 3.1.
func TestThumbprintRFC7638(t *testing.T) {
	t.Parallel()
	const set = `{"keys":[{"kty":"RSA",
	  "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
	  "e":"AQAB","alg":"RS256"}]}`
	keys, err := ParseJWKS([]byte(set))
	if err != nil {
		t.Fatal(err)
	}
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	if keys[0].KID != want {
		t.Fatalf("KID = %q, want the RFC 7638 thumbprint %q", keys[0].KID, want)
	}
	if tp, _ := domain.JWKThumbprint(keys[0].Key.(*rsa.PublicKey)); tp != want {
		t.Fatalf("JWKThumbprint = %q, want %q", tp, want)
	}
}

// TestThumbprintIndependentOfSpelling: the thumbprint is the same whatever
// members or order the JWKS used, and differs between keys.
func TestThumbprintIndependentOfSpelling(t *testing.T) {
	t.Parallel()
	for _, k := range []jwk{ecJWK(t, "", elliptic.P384()), edJWK(t, ""), ecJWK(t, "", elliptic.P521())} {
		plain, err := ParseJWKS(setJSON(t, k))
		if err != nil {
			t.Fatal(err)
		}
		decorated, err := ParseJWKS(setJSON(t, k.with("use", "sig", "x5t", "ignored")))
		if err != nil {
			t.Fatal(err)
		}
		if plain[0].KID != decorated[0].KID {
			t.Fatalf("thumbprints differ: %q vs %q", plain[0].KID, decorated[0].KID)
		}
		if tp, _ := domain.JWKThumbprint(k.pub); tp != plain[0].KID {
			t.Fatalf("JWKThumbprint(key) = %q, KID = %q", tp, plain[0].KID)
		}
	}
}

func TestPublicSetDropsPrivateMaterial(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := priv.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	pub := map[string]any{"kty": "EC", "crv": "P-256", "kid": "pub", "x": b64(raw[1:33]), "y": b64(raw[33:]), "use": "sig", "x-extra": "dropped"}
	d := make([]byte, 32)
	priv.D.FillBytes(d)
	private := map[string]any{"kty": "EC", "crv": "P-256", "kid": "priv", "x": b64(raw[1:33]), "y": b64(raw[33:]), "d": b64(d)}
	body, _ := json.Marshal(map[string]any{"keys": []any{pub, private, map[string]any{"kty": "oct", "k": "c2VjcmV0"}}})
	keys, set, err := PublicSet(body)
	if err != nil || len(keys) != 1 || keys[0].KID != "pub" {
		t.Fatalf("keys %v err %v", keys, err)
	}
	if strings.Contains(string(set), b64(d)) || strings.Contains(string(set), `"d"`) || strings.Contains(string(set), "c2VjcmV0") || strings.Contains(string(set), "x-extra") {
		t.Fatalf("shared set keeps private or unknown members: %s", set)
	}
	again, err := ParseJWKS(set)
	if err != nil || len(again) != 1 || again[0].KID != "pub" {
		t.Fatalf("shared set does not parse back: %v %v", again, err)
	}
}

// members renders k's members as JSON members, in a fixed order, without
// the braces, so a test can add raw ones (a name twice, a name in another
// case) that a map cannot hold.
func members(t *testing.T, k jwk) string {
	t.Helper()
	names := make([]string, 0, len(k.fields))
	for name := range k.fields {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		v, err := json.Marshal(k.fields[name])
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%q:%s", name, v))
	}
	return strings.Join(parts, ",")
}

// sameKeys reports whether two parses read the same keys.
func sameKeys(a, b []domain.PublicKey) bool {
	return slices.EqualFunc(a, b, func(x, y domain.PublicKey) bool {
		return x.KID == y.KID && slices.Equal(x.Algs, y.Algs) &&
			x.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(y.Key)
	})
}

// TestParseJWKSExactMemberNames: a key with a member named like a JWK
// member in another case is refused, whether or not the exact member is
// there too. encoding/json would read "KID" as kid (the last of the two
// when both are sent), while the shared copy keeps exact names, so two
// workers could read one key under two kids.
func TestParseJWKSExactMemberNames(t *testing.T) {
	t.Parallel()
	ec := ecJWK(t, "ec", elliptic.P256())
	other := ecJWK(t, "other", elliptic.P256())
	companion := ecJWK(t, "companion", elliptic.P256())
	for _, tc := range []struct {
		name  string
		extra string // raw members added to ec's
	}{
		{"KID alone", `"KID":"evil"`},
		{"Kid beside kid", `"Kid":"evil"`},
		{"KID before kid", `"KID":"evil"`}, // members sorts KID before kid
		{"ALG", `"ALG":"ES256"`},
		{"Alg naming another algorithm", `"Alg":"ES384"`},
		{"KTY", `"KTY":"oct"`},
		{"Crv", `"Crv":"P-384"`},
		{"X", `"X":` + strconv.Quote(other.fields["x"].(string))},
		{"USE", `"USE":"enc"`},
		{"Key_Ops", `"Key_Ops":["encrypt"]`},
		{"private D", `"D":"AAAA"`},
		{"Kelvin sign for k in kty", `"\u212aty":"oct"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := []byte(`{"keys":[{` + members(t, ec) + `,` + tc.extra + `},{` + members(t, companion) + `}]}`)
			keys, err := ParseJWKS(body)
			if err != nil {
				t.Fatalf("ParseJWKS: %v", err)
			}
			if len(keys) != 1 || keys[0].KID != "companion" {
				t.Fatalf("keys %v: the key with %s was not refused", keys, tc.extra)
			}
			// Alone in its set, the reason is given.
			_, err = ParseJWKS([]byte(`{"keys":[{` + members(t, ec) + `,` + tc.extra + `}]}`))
			if !errors.Is(err, ErrNoUsableKeys) || !strings.Contains(err.Error(), "in another case") {
				t.Fatalf("err = %v, want the key refused for a name in another case", err)
			}
		})
	}
	// Other members, in any case, are ignored as before.
	keys, err := ParseJWKS([]byte(`{"keys":[{` + members(t, ec) + `,"X5Z":"a","Ext":true,"KeyId":"z"}]}`))
	if err != nil || len(keys) != 1 || keys[0].KID != "ec" {
		t.Fatalf("keys %v, err %v", keys, err)
	}
}

// TestParseJWKSRefusesAmbiguousSets: a set that two readers could read two
// ways is refused whole: a member name twice anywhere (compared after
// unescaping), "keys" in another case, nesting deeper than
// domain.MaxJSONDepth, invalid UTF-8, data after the set.
func TestParseJWKSRefusesAmbiguousSets(t *testing.T) {
	t.Parallel()
	ec := ecJWK(t, "ec", elliptic.P256())
	other := ecJWK(t, "other", elliptic.P256())
	key := "{" + members(t, ec) + "}"
	for _, tc := range []struct {
		name, body, want string
	}{
		{"kid twice", `{"keys":[{` + members(t, ec) + `,"kid":"evil"}]}`, "duplicate member name"},
		{"x twice", `{"keys":[{` + members(t, ec) + `,"x":` + strconv.Quote(other.fields["x"].(string)) + `}]}`, "duplicate member name"},
		{"kid twice, once escaped", `{"keys":[{` + members(t, ec) + `,"\u006bid":"evil"}]}`, "duplicate member name"},
		{"alg twice", `{"keys":[{` + members(t, ec) + `,"alg":"ES256","alg":"none"}]}`, "duplicate member name"},
		{"keys twice", `{"keys":[` + key + `],"keys":[]}`, "duplicate member name"},
		{"a name twice in an unknown member", `{"keys":[{` + members(t, ec) + `,"ext":{"a":1,"a":2}}]}`, "duplicate member name"},
		{"a name twice beside keys", `{"keys":[` + key + `],"meta":{"v":1,"v":2}}`, "duplicate member name"},
		{"Keys beside keys", `{"keys":[` + key + `],"Keys":[]}`, "in another case"},
		{"KEYS alone", `{"KEYS":[` + key + `]}`, "in another case"},
		{"nested too deep beside keys", `{"keys":[` + key + `],"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "nested deeper than"},
		{"nested too deep in a key", `{"keys":[{` + members(t, ec) + `,"ext":` + strings.Repeat(`{"a":`, 40) + "0" + strings.Repeat("}", 40) + `}]}`, "nested deeper than"},
		{"30000 unclosed arrays", `{"keys":` + strings.Repeat("[", 30000), "nested deeper than"},
		{"invalid UTF-8", "{\"keys\":[" + key + "],\"n\":\"\xff\"}", "UTF-8"},
		{"data after the set", `{"keys":[` + key + `]}{"keys":[]}`, "data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseJWKS([]byte(tc.body))
			if err == nil {
				t.Fatalf("ParseJWKS = %v, want the set refused", keys)
			}
			if errors.Is(err, ErrNoUsableKeys) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want the set refused for %q", err, tc.want)
			}
			if _, _, err := PublicSet([]byte(tc.body)); err == nil {
				t.Fatal("PublicSet accepted the set")
			}
		})
	}
}

// TestParseJWKSMemberTypes: a member the parser reads must be a string
// (key_ops an array of strings); null is not absent.
func TestParseJWKSMemberTypes(t *testing.T) {
	t.Parallel()
	ec := ecJWK(t, "ec", elliptic.P256())
	for _, tc := range []struct{ name, extra, want string }{
		{"kid a number", `"kid":7`, `"kid" is not a string`},
		{"kid null", `"kid":null`, `"kid" is not a string`},
		{"d null", `"d":null`, `"d" is not a string`},
		{"use an array", `"use":["sig"]`, `"use" is not a string`},
		{"key_ops a string", `"key_ops":"verify"`, `"key_ops" is not an array`},
		{"key_ops with a number", `"key_ops":["verify",1]`, `"key_ops" holds a value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := ec.with(strings.Trim(strings.SplitN(tc.extra, ":", 2)[0], `"`), nil)
			_, err := ParseJWKS([]byte(`{"keys":[{` + members(t, k) + `,` + tc.extra + `}]}`))
			if !errors.Is(err, ErrNoUsableKeys) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSharedSetReadsTheSame: what a worker shares (PublicSet) parses to the
// keys it parsed itself from the body, for sets with keys listed twice,
// escaped names and unknown members: two workers cannot disagree.
func TestSharedSetReadsTheSame(t *testing.T) {
	t.Parallel()
	ec := ecJWK(t, "ec", elliptic.P256())
	ed := edJWK(t, "")
	rsaKey := rsaJWK(t, "rsa", 2048).with("alg", "PS256")
	for name, body := range map[string]string{
		"plain":                `{"keys":[{` + members(t, ec) + `},{` + members(t, ed) + `},{` + members(t, rsaKey) + `}]}`,
		"a key listed twice":   `{"keys":[{` + members(t, ec) + `},{` + members(t, ec) + `}]}`,
		"two keys, one kid":    `{"keys":[{` + members(t, ec) + `},{` + members(t, ecJWK(t, "ec", elliptic.P256())) + `}]}`,
		"escaped member names": `{"keys":[{` + strings.Replace(members(t, ec), `"kid"`, `"\u006bid"`, 1) + `}]}`,
		"unknown members":      `{"keys":[{` + members(t, ec) + `,"x5t":"a","ext":{"KID":"z"}}],"KID":"set"}`,
		"html in a kid":        `{"keys":[{` + members(t, ec.with("kid", "<a&b>")) + `}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			keys, shared, err := PublicSet([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseJWKS(shared)
			if err != nil {
				t.Fatalf("the shared set %s does not parse: %v", shared, err)
			}
			if !sameKeys(keys, again) {
				t.Fatalf("the fetcher read %v, the shared set %v", keys, again)
			}
		})
	}
}

// TestParseJWKSCostIsLinear: parsing a set costs memory linear in its size,
// whatever its shape, up to the default fetch cap (512 KiB). The strict
// decoder reads every value by token, and encoding/json allocates a few
// objects for each scalar it reads from a stream, so a body of tiny values
// is the worst case: about 100 bytes and 3 objects per byte (a 512 KiB
// set of zeros costs some 54 MB, transiently). The bound is 128 B/B and 4
// objects per byte; a walk that grew with depth or with the number of
// members would cost orders of magnitude more.
func TestParseJWKSCostIsLinear(t *testing.T) {
	// Not parallel: the counts are process-wide.
	const size = 512 << 10
	key := "{" + members(t, ecJWK(t, "ec", elliptic.P256())) + "}"
	list := func(head, unit, tail string) []byte {
		n := (size - len(head) - len(tail) + 1) / (len(unit) + 1)
		return []byte(head + strings.TrimSuffix(strings.Repeat(unit+",", n), ",") + tail)
	}
	var manyNames strings.Builder
	for i := 0; manyNames.Len() < size-100; i++ {
		fmt.Fprintf(&manyNames, `"m%x":0,`, i)
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"tiny numbers beside the keys", list(`{"keys":[`+key+`],"x":[`, "0", "]}")},
		{"empty arrays beside the keys", list(`{"keys":[`+key+`],"x":[`, "[]", "]}")},
		{"empty objects as keys", list(`{"keys":[`, "{}", "]}")},
		{"many member names in a key", []byte(`{"keys":[{` + manyNames.String() + members(t, ecJWK(t, "ec", elliptic.P256())) + `}]}`)},
		{"deepest legal nesting, repeated", list(`{"keys":[`+key+`],"x":[`, strings.Repeat("[", domain.MaxJSONDepth-2)+strings.Repeat("]", domain.MaxJSONDepth-2), "]}")},
		{"unclosed arrays", []byte(`{"keys":` + strings.Repeat("[", size-10))},
		{"one long string", []byte(`{"keys":[` + key + `],"x":"` + strings.Repeat("a", size-100) + `"}`)},
	} {
		_, _ = ParseJWKS(tc.body) // warm up
		var before, after runtime.MemStats
		prev := runtime.GOMAXPROCS(1)
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := ParseJWKS(tc.body)
		runtime.ReadMemStats(&after)
		runtime.GOMAXPROCS(prev)
		n := float64(len(tc.body))
		perByte := float64(after.TotalAlloc-before.TotalAlloc) / n
		objPerByte := float64(after.Mallocs-before.Mallocs) / n
		t.Logf("%-35s %7d B  %6.1f B/B  %.3f allocs/B  err=%v", tc.name, len(tc.body), perByte, objPerByte, err != nil)
		if perByte > 128 || objPerByte > 4 {
			t.Errorf("%s: %.1f bytes and %.3f objects allocated per byte", tc.name, perByte, objPerByte)
		}
	}
}
