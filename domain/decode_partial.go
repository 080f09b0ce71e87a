package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// DecodeStrictBusPartial decodes into v (a non-nil pointer) the members
// of JSON read back from the bus that v's fields name, for a reader that
// needs a few fields of an event with many more (the audit, the view's
// "already held?" check). It keeps DecodeStrictBus's bounds: at most
// maxBytes (0: MaxBusJSONBytes), valid UTF-8, nesting at most
// maxBusJSONDepth (both checked by linear passes before anything is
// decoded), exactly one value and nothing after it. Within every object it
// reads into a struct (v's, and those of fields that are structs, pointers
// to structs, or slices and arrays of them):
//
//   - a member whose name is exactly a field's JSON name (after
//     unescaping) is decoded into that field;
//   - a member whose name is not a field's but equals one under case or
//     Unicode folding is refused, never matched (encoding/json would match
//     "Session_ID", "ſession" or "\u212aid") and never skipped (another
//     reader might match it): compared after compatibility decomposition
//     (so fullwidth letters and ligatures fold too) and case folding, with
//     dotted and dotless i folded to i and "ß" to "ss" (see folder.key);
//   - any other member is unknown and allowed: its value is checked to be
//     JSON and skipped, not built;
//   - no member name twice, known or unknown. A duplicate is refused even
//     among unknown members: no worker writes one (encoding/json writes a
//     name once), every other reader resolves it its own way (first wins,
//     last wins, refused; DecodeStrictBus refuses it), and a member unknown
//     here is known to the full decode of the same event;
//   - a field that is a struct (or a list of them) takes an object (an
//     array) or null, nothing else.
//
// Values of unknown members are not looked into, so names inside them are
// not checked; fields of other types (strings, numbers, time.Time, maps,
// json.RawMessage) are decoded by encoding/json, whose map keys are data,
// as in DecodeStrictBus. Tag options (omitempty, string) are ignored.
//
// Its cost is linear in len(data): each byte is scanned a bounded number
// of times (the pre-passes, the tokenizer, a skipped value's scan); a
// member costs a lookup of its name and, when unknown, a fold key (only of
// a name short enough to fold to a field's: see foldsTo) and a place in a
// map for the duplicate check. Errors name a member or an offset, never a
// value.
func DecodeStrictBusPartial(data []byte, v any, maxBytes int) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode into %T: not a non-nil pointer", v)
	}
	if maxBytes <= 0 {
		maxBytes = MaxBusJSONBytes
	}
	if len(data) > maxBytes {
		return fmt.Errorf("%d bytes, over the limit of %d", len(data), maxBytes)
	}
	if !utf8.Valid(data) {
		return errJSONNotUTF8
	}
	if jsonDeeperThan(data, maxBusJSONDepth) {
		return fmt.Errorf("nested deeper than %d levels", maxBusJSONDepth)
	}
	d := partialDecoder{nameWalker: nameWalker{dec: json.NewDecoder(bytes.NewReader(data)), path: make([]pathStep, 0, MaxJSONDepth)}}
	if err := d.value(rv.Elem()); err != nil {
		return err
	}
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		return errJSONTrailing
	}
	return nil
}

// partialDecoder reads one JSON value by tokens into a Go value, reading
// only the members the Go type names. Its path (nameWalker's) names the
// member being read in refusals.
type partialDecoder struct {
	nameWalker
	fold folder
}

// partialMalformed is the refusal of data that is not JSON where the
// tokenizer stopped: describeJSONError names the offset when it can.
func partialMalformed(err error) error {
	return fmt.Errorf("not valid: %s", describeJSONError(err))
}

// value reads the next value into rv, which is settable.
func (d *partialDecoder) value(rv reflect.Value) error {
	t := rv.Type()
	if partialLeaf(t) {
		err := d.dec.Decode(rv.Addr().Interface())
		var syntaxErr *json.SyntaxError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return partialMalformed(err)
		}
		// A type error, or a refusal of the type's own decoder
		// (time.Time), which may quote the value.
		return fmt.Errorf("not valid: %s must be a %s", d.where(), t)
	}
	tok, err := d.dec.Token()
	if err != nil {
		return partialMalformed(err)
	}
	if tok == nil {
		// null: as encoding/json, a pointer or a slice becomes nil, a
		// struct or an array is left as it is.
		if k := rv.Kind(); k == reflect.Pointer || k == reflect.Slice {
			rv.SetZero()
		}
		return nil
	}
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		rv = rv.Elem()
	}
	delim, _ := tok.(json.Delim)
	switch {
	case delim == '{' && rv.Kind() == reflect.Struct:
		if err := d.object(rv); err != nil {
			return err
		}
	case delim == '[' && (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array):
		if err := d.array(rv); err != nil {
			return err
		}
	default:
		want := "an object"
		if rv.Kind() != reflect.Struct {
			want = "an array"
		}
		return fmt.Errorf("not valid: %s must be %s", d.where(), want)
	}
	if _, err := d.dec.Token(); err != nil { // the closing delimiter
		return partialMalformed(err)
	}
	return nil
}

// where names the value being read: a member's path, or the data.
func (d *partialDecoder) where() string {
	if len(d.path) == 0 {
		return "the data"
	}
	return "field " + d.pathTo("")
}

// object reads the members of an object whose '{' was just read into the
// struct sv.
func (d *partialDecoder) object(sv reflect.Value) error {
	fs := partialFieldsOf(sv.Type())
	var onStack [32]bool
	sent := onStack[:0]
	if n := len(fs.fields); n <= len(onStack) {
		sent = onStack[:n]
	} else {
		sent = make([]bool, n)
	}
	var unknown map[string]struct{} // names of unknown members, made on the first
	for d.dec.More() {
		kt, err := d.dec.Token()
		if err != nil {
			return partialMalformed(err)
		}
		name, ok := kt.(string)
		if !ok {
			return errors.New("not valid: malformed JSON") // not reached: the tokenizer gives a name or an error
		}
		if i, known := fs.index[name]; known {
			if sent[i] {
				return fmt.Errorf("not valid: field %s is sent twice", d.pathTo(name))
			}
			sent[i] = true
			d.path = append(d.path, pathStep{name: name, member: true})
			if err := d.value(fs.fields[i].in(sv)); err != nil {
				return err
			}
			d.path = d.path[:len(d.path)-1]
			continue
		}
		if field, folds := fs.foldsTo(&d.fold, name); folds {
			return fmt.Errorf("not valid: member %s differs from field %q only by case or Unicode folding", d.pathTo(name), field)
		}
		if _, dup := unknown[name]; dup {
			return fmt.Errorf("not valid: member %s is sent twice", d.pathTo(name))
		}
		if unknown == nil {
			unknown = map[string]struct{}{}
		}
		unknown[name] = struct{}{}
		var skip skipValue
		if err := d.dec.Decode(&skip); err != nil {
			return partialMalformed(err)
		}
	}
	return nil
}

// array reads the elements of an array whose '[' was just read into the
// slice or array av: a slice takes every element (its length reset first,
// as encoding/json does), an array as many as it holds, the rest skipped
// and the remainder of the array zeroed.
func (d *partialDecoder) array(av reflect.Value) error {
	isSlice := av.Kind() == reflect.Slice
	if isSlice {
		av.SetLen(0)
	}
	i := 0
	for ; d.dec.More(); i++ {
		d.path = append(d.path, pathStep{index: i})
		switch {
		case isSlice:
			if i >= av.Cap() {
				av.Grow(1)
			}
			av.SetLen(i + 1)
			av.Index(i).SetZero()
			fallthrough
		case i < av.Len():
			if err := d.value(av.Index(i)); err != nil {
				return err
			}
		default:
			var skip skipValue
			if err := d.dec.Decode(&skip); err != nil {
				return partialMalformed(err)
			}
		}
		d.path = d.path[:len(d.path)-1]
	}
	for ; !isSlice && i < av.Len(); i++ {
		av.Index(i).SetZero()
	}
	return nil
}

// partialLeaf reports whether values of t are decoded whole by
// encoding/json: all but structs, pointers to them and lists of them,
// and any of those that decode themselves (time.Time, a type with
// UnmarshalText, which takes a string).
func partialLeaf(t reflect.Type) bool {
	if !hasMemberNames(t) {
		return true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// partialField is one field of a struct the partial decoder reads.
type partialField struct {
	name  string
	index []int // as reflect.Type.FieldByIndex: through embedded structs
}

// in returns the field in sv, making the embedded structs it is reached
// through as it goes.
func (f partialField) in(sv reflect.Value) reflect.Value {
	for i, x := range f.index {
		if i > 0 && sv.Kind() == reflect.Pointer {
			if sv.IsNil() {
				sv.Set(reflect.New(sv.Type().Elem()))
			}
			sv = sv.Elem()
		}
		sv = sv.Field(x)
	}
	return sv
}

// partialFields is what the partial decoder knows of a struct type.
type partialFields struct {
	fields []partialField
	index  map[string]int // JSON name -> index in fields
	// folded maps the fold key of each field's name to the name, and
	// maxKey is the longest key (see foldsTo).
	folded map[string]string
	maxKey int
}

var partialFieldSets sync.Map // reflect.Type -> *partialFields

func partialFieldsOf(t reflect.Type) *partialFields {
	if fs, ok := partialFieldSets.Load(t); ok {
		return fs.(*partialFields)
	}
	fs := &partialFields{index: map[string]int{}, folded: map[string]string{}}
	depth := map[string]int{}
	var add func(t reflect.Type, index []int)
	add = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			at := append(append([]int(nil), index...), i)
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					if f.Type.Kind() == reflect.Pointer && !f.IsExported() {
						continue // encoding/json cannot set it either
					}
					add(ft, at)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			// As encoding/json: the shallower of two fields of one name.
			if j, ok := fs.index[name]; ok {
				if depth[name] <= len(at) {
					continue
				}
				fs.fields[j] = partialField{name: name, index: at}
				depth[name] = len(at)
				continue
			}
			fs.index[name] = len(fs.fields)
			depth[name] = len(at)
			fs.fields = append(fs.fields, partialField{name: name, index: at})
			var fold folder
			key := string(fold.key(name))
			fs.folded[key] = name
			fs.maxKey = max(fs.maxKey, len(key))
			if !isASCII(key) {
				fs.maxKey = math.MaxInt / 8 // no bound on the names that fold to it
			}
		}
	}
	add(t, nil)
	actual, _ := partialFieldSets.LoadOrStore(t, fs)
	return actual.(*partialFields)
}

// foldsTo reports whether name, which is no field's name, equals a field's
// under folding, and which. A name longer than 4 bytes for each byte of
// the longest key cannot: all fields' keys are ASCII (when one is not,
// maxKey is too large to reject anything), every rune of a name yields at
// least one rune of its key, and a rune of an ASCII key is one byte.
func (fs *partialFields) foldsTo(f *folder, name string) (string, bool) {
	if len(name) > 4*fs.maxKey || (len(name) > fs.maxKey && isASCII(name)) {
		return "", false
	}
	field, ok := fs.folded[string(f.key(name))]
	return field, ok
}

// folder computes fold keys in buffers it keeps from one name to the next:
// a key costs no allocation once they are large enough.
type folder struct {
	caser             transform.Transformer // cases.Fold, made on the first non-ASCII name
	case1, case2, out []byte
}

// key returns the form in which member and field names are compared for
// the folding refusal, valid until the next call: upper case for ASCII;
// otherwise, rune by rune, the upper case of the lower case ("ı" and "İ"
// become "I", "ſ" "S", the Kelvin sign "K"), its compatibility
// decomposition (fullwidth letters, ligatures, superscripts and other
// forms of a letter become the letter, and a letter with a mark becomes
// the two), full case folding ("ß" becomes "ss"), then each rune's least of
// its simple folding orbit, as encoding/json folds ("s" becomes "S"). Two
// names encoding/json would match have the same key; so do two names that
// NFKC, then full case folding, make equal, when one of them is ASCII.
// Decomposing rune by rune, not normalizing the name, keeps the cost of a
// key to a few table lookups a rune, with no allocation once the buffers
// are large enough.
func (f *folder) key(name string) []byte {
	f.out = f.out[:0]
	if isASCII(name) {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			f.out = append(f.out, c)
		}
		return f.out
	}
	if f.caser == nil {
		f.caser = cases.Fold()
	}
	f.case1 = f.case1[:0]
	var enc [utf8.UTFMax]byte
	for _, r := range name {
		r = unicode.ToUpper(unicode.ToLower(r))
		if r < utf8.RuneSelf {
			f.case1 = append(f.case1, byte(r))
			continue
		}
		d := norm.NFKD.Properties(enc[:utf8.EncodeRune(enc[:], r)]).Decomposition()
		if d == nil {
			f.case1 = utf8.AppendRune(f.case1, r)
			continue
		}
		for _, x := range string(d) {
			f.case1 = utf8.AppendRune(f.case1, unicode.ToUpper(unicode.ToLower(x)))
		}
	}
	var err error
	if f.case2, _, err = transform.Append(f.caser, f.case2[:0], f.case1); err != nil {
		f.case2 = append(f.case2[:0], f.case1...) // not reached: folding valid UTF-8 does not fail
	}
	for _, r := range string(f.case2) {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			f.out = append(f.out, byte(r))
			continue
		}
		f.out = utf8.AppendRune(f.out, leastFold(r))
	}
	return f.out
}

// leastFold is the least rune of r's simple case-folding orbit.
func leastFold(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
