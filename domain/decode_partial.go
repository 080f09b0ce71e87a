package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
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
// maxBusJSONDepth, exactly one JSON value and nothing after it, all
// checked by linear passes (json.Valid for the grammar) before anything
// is decoded. Within every object it reads into a struct (v's, and those
// of fields that are structs, pointers to structs, or slices and arrays of
// them):
//
//   - a member whose name is exactly a field's JSON name (after
//     unescaping) is decoded into that field;
//   - a member whose name is not a field's but equals one under case or
//     Unicode folding is refused, never matched (encoding/json would match
//     "Session_ID", "ſession" or "\u212aid") and never skipped (another
//     reader might match it): compared after compatibility decomposition
//     (so fullwidth letters and ligatures fold too) and case folding, with
//     dotted and dotless i folded to i and "ß" to "ss" (see folder.key);
//   - any other member is unknown and allowed: its value is skipped, not
//     built;
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
// json.RawMessage) are decoded by encoding/json from the bytes of their
// value, its map keys being data, as in DecodeStrictBus. Tag options
// (omitempty, string) are ignored.
//
// Its cost is linear in len(data): each byte is read a bounded number of
// times (the pre-passes, the walk, encoding/json on the value of a field
// it decodes); a member costs a lookup of its name (a slice of one copy of
// data unless escaped) and, when unknown, a fold key (only of a name short
// enough to fold to a field's: see foldsTo) and a place in a map for the
// duplicate check. Errors name a member or an offset, never a value.
func DecodeStrictBusPartial(data []byte, v any, maxBytes int) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode into %T: not a non-nil pointer", v)
	}
	if err := checkBusBounds(data, maxBytes); err != nil {
		return err
	}
	if !json.Valid(data) {
		return notOneJSONValue(data)
	}
	d := partialDecoder{data: data, str: string(data), path: make([]pathStep, 0, 8)}
	return d.value(rv.Elem())
}

// notOneJSONValue says what is wrong with data that json.Valid refused:
// malformed where a decoder stops, or something after the value.
func notOneJSONValue(data []byte) error {
	var skip skipValue
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&skip); err != nil {
		return fmt.Errorf("not valid: %s", describeJSONError(err))
	}
	return errJSONTrailing
}

// partialDecoder reads one JSON value, which json.Valid accepted, into a
// Go value, reading only the members the Go type names: it finds where
// values start and end by itself, and hands encoding/json the bytes of
// each value it decodes into a field of another kind than a struct or a
// list of them, so each value means what it means to encoding/json.
type partialDecoder struct {
	data []byte
	str  string     // data, once as a string: member names are slices of it, not copies
	i    int        // where the next value starts, or whitespace before it
	path []pathStep // as nameScanner's: the member or element being read
	fold folder
}

// pathTo renders the path of member name under the current one, as
// checkMemberNames does.
func (d *partialDecoder) pathTo(name string) string { return renderPath(d.path, name) }

// where names the value being read: a member's path, or the data.
func (d *partialDecoder) where() string {
	if len(d.path) == 0 {
		return "the data"
	}
	return "field " + d.pathTo("")
}

// next skips whitespace and returns the byte after it (0 at the end).
func (d *partialDecoder) next() byte {
	for ; d.i < len(d.data); d.i++ {
		switch c := d.data[d.i]; c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}

// value reads the value at d.i into rv, which is settable.
func (d *partialDecoder) value(rv reflect.Value) error {
	t := rv.Type()
	c := d.next()
	if partialLeaf(t) {
		start := d.i
		d.i = skipJSONValue(d.data, start)
		if err := json.Unmarshal(d.data[start:d.i], rv.Addr().Interface()); err != nil {
			// A type error, or a refusal of the type's own decoder
			// (time.Time), which may quote the value.
			return fmt.Errorf("not valid: %s must be a %s", d.where(), t)
		}
		return nil
	}
	if c == 'n' {
		// null: as encoding/json, a pointer or a slice becomes nil, a
		// struct or an array is left as it is.
		d.i += len("null")
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
	switch k := rv.Kind(); {
	case c == '{' && k == reflect.Struct:
		return d.object(rv)
	case c == '[' && (k == reflect.Slice || k == reflect.Array):
		return d.array(rv)
	case k == reflect.Struct:
		return fmt.Errorf("not valid: %s must be an object", d.where())
	default:
		return fmt.Errorf("not valid: %s must be an array", d.where())
	}
}

// name reads the member name at d.i, a string: a slice of d.str when it
// has no escape, else unescaped by encoding/json.
func (d *partialDecoder) name() string {
	start := d.i
	d.i = jsonStringEnd(d.data, start)
	raw := d.data[start:d.i]
	if bytes.IndexByte(raw, '\\') < 0 {
		return d.str[start+1 : d.i-1]
	}
	var name string
	_ = json.Unmarshal(raw, &name) // valid: json.Valid read it
	return name
}

// object reads the members of the object at d.i into the struct sv.
func (d *partialDecoder) object(sv reflect.Value) error {
	fs := partialFieldsOf(sv.Type())
	var onStack [32]bool // room for any struct of ours; a larger one allocates
	sent := append(onStack[:0], make([]bool, len(fs.fields))...)
	var unknown map[string]struct{} // names of unknown members, made on the first
	d.i++                           // '{'
	for {
		if d.next() == '}' {
			d.i++
			return nil
		}
		name := d.name()
		d.next()
		d.i++ // ':'
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
		} else {
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
			d.next()
			d.i = skipJSONValue(d.data, d.i)
		}
		if d.next() == ',' {
			d.i++
		}
	}
}

// array reads the elements of the array at d.i into the slice or array
// av: a slice takes every element (its length reset first, as
// encoding/json does), an array as many as it holds, the rest skipped and
// the remainder of the array zeroed.
func (d *partialDecoder) array(av reflect.Value) error {
	isSlice := av.Kind() == reflect.Slice
	if isSlice {
		av.SetLen(0)
	}
	d.i++ // '['
	i := 0
	for ; d.next() != ']'; i++ {
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
			d.i = skipJSONValue(d.data, d.i)
		}
		d.path = d.path[:len(d.path)-1]
		if d.next() == ',' {
			d.i++
		}
	}
	d.i++ // ']'
	for ; !isSlice && i < av.Len(); i++ {
		av.Index(i).SetZero()
	}
	return nil
}

// skipJSONValue returns where the value that starts at data[i] ends, in
// data that json.Valid accepted.
func skipJSONValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return jsonStringEnd(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = jsonStringEnd(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for ; i < len(data); i++ { // a number, true, false or null
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// jsonStringEnd returns where the string whose opening quote is at data[i]
// ends, after its closing quote.
func jsonStringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
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
	sv = sv.Field(f.index[0])
	for _, x := range f.index[1:] {
		if sv.Kind() == reflect.Pointer {
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

// partialFieldsOf lists the fields of struct type t that take members, by
// encoding/json's rules (its typeFields): breadth first through embedded
// structs, each struct type expanded once, at the shallowest depth it
// appears at (so a type that embeds itself ends), through the first of
// its places at that depth; of the fields of one name, those at the least
// depth compete, the one with its name from a tag wins over those
// without, and two alike hide the name altogether (a member of that name
// is then unknown, as encoding/json ignores it). A type embedded at two
// places of one depth gives each of its own fields twice, and so hides
// them, but, as in encoding/json, not those of the types it embeds.
func partialFieldsOf(t reflect.Type) *partialFields {
	if fs, ok := partialFieldSets.Load(t); ok {
		return fs.(*partialFields)
	}
	type candidate struct {
		index  []int
		tagged bool
	}
	type embedded struct {
		t     reflect.Type
		index []int
		twice bool // embedded at more than one place of its depth
	}
	fs := &partialFields{index: map[string]int{}, folded: map[string]string{}}
	settled := map[string]bool{} // names decided at a shallower depth
	expanded := map[reflect.Type]bool{}
	for level := []embedded{{t: t}}; len(level) > 0; {
		var next []embedded
		nextAt := map[reflect.Type]int{}
		var names []string
		found := map[string][]candidate{}
		for _, s := range level {
			if expanded[s.t] {
				continue // at a shallower depth
			}
			for i := range s.t.NumField() {
				f := s.t.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				at := append(append([]int(nil), s.index...), i)
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
					if f.Type.Kind() == reflect.Pointer && !f.IsExported() {
						continue // encoding/json cannot set it either
					}
					if j, ok := nextAt[ft]; ok {
						next[j].twice = true
					} else {
						nextAt[ft] = len(next)
						next = append(next, embedded{t: ft, index: at})
					}
					continue
				}
				if !f.IsExported() {
					continue
				}
				tagged := name != ""
				if !tagged {
					name = f.Name
				}
				if settled[name] {
					continue
				}
				if found[name] == nil {
					names = append(names, name)
				}
				found[name] = append(found[name], candidate{index: at, tagged: tagged})
				if s.twice {
					found[name] = append(found[name], candidate{index: at, tagged: tagged})
				}
			}
			expanded[s.t] = true
		}
		for _, name := range names {
			settled[name] = true
			var won []candidate
			for _, c := range found[name] {
				if c.tagged {
					won = append(won, c)
				}
			}
			if len(won) == 0 {
				won = found[name]
			}
			if len(won) > 1 {
				continue // ambiguous: encoding/json drops the name
			}
			fs.add(name, won[0].index)
		}
		level = next
	}
	actual, _ := partialFieldSets.LoadOrStore(t, fs)
	return actual.(*partialFields)
}

// add records the field of the given name, reached by index.
func (fs *partialFields) add(name string, index []int) {
	fs.index[name] = len(fs.fields)
	fs.fields = append(fs.fields, partialField{name: name, index: index})
	var fold folder
	key := string(fold.key(name))
	fs.folded[key] = name
	fs.maxKey = max(fs.maxKey, len(key))
	if !isASCII(key) {
		fs.maxKey = math.MaxInt / 8 // no bound on the names that fold to it
	}
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
