package domain

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// errLeaveToDecoder stops the walk where the payload is malformed: the
// decoder proper refuses it there, with its usual message.
var errLeaveToDecoder = errors.New("malformed JSON")

// checkMemberNames walks data against t and refuses a member name that is
// not exactly a field's JSON name (encoding/json matches case-insensitively)
// and a member sent twice (encoding/json keeps the last). It also refuses
// a value that cannot be what a struct or a list of structs decodes from
// (an array for a struct, a number for a list), which encoding/json would
// refuse only after decoding the rest, element by element. It names the
// member, never a value.
//
// It reads data with a scanner of its own (nameScanner) that finds the
// same refusals, at the same points, as a walk of encoding/json's
// Decoder.Token stream does (that walk is kept, as the oracle, in
// checkMemberNamesTokens in a test file): where data stops being JSON
// before a refusal, it returns nil and leaves the refusal to the decoder
// proper, which finds the same malformation.
//
// Its cost is linear in len(data), given the nesting bound DecodeStrict
// checks first: the walk descends only into values whose type has member
// names to check (structs, and slices and arrays of them); any other value
// (a custom claims object, a string) is validated as encoding/json's
// scanner does and skipped whole, without recursion or copying. It
// allocates nothing per token: a member name is looked up as a slice of
// data, or, when it has an escape or bytes that are not UTF-8, unescaped
// into a buffer kept for the walk. The member path is kept as a stack of
// names (each a field's own name string) and made into a string only for
// a refusal.
func checkMemberNames(data []byte, t reflect.Type) error {
	var path [MaxJSONDepth]pathStep // room for the paths of this package's types; a longer one grows
	s := nameScanner{data: data}
	if err := s.walk(t, path[:0]); err != errLeaveToDecoder {
		return err
	}
	return nil
}

// pathStep is one step of a member path: a member name, or an array
// element's index when member is false.
type pathStep struct {
	name   string
	index  int
	member bool
}

// maxNameInMessage bounds how much of a member name a refusal quotes: the
// name of an unknown member is the sender's and may be 64 KiB long.
const maxNameInMessage = 64

// renderPath renders the path of member name under path (of the value at
// path when name is ""), as profile.attribute_mapping.email or
// user.emails[2].email.
func renderPath(path []pathStep, name string) string {
	var b strings.Builder
	for _, s := range path {
		if s.member {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.name)
			continue
		}
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(s.index))
		b.WriteByte(']')
	}
	if name != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if len(name) > maxNameInMessage {
			name = name[:maxNameInMessage] + "..."
		}
		b.WriteString(name)
	}
	return strconv.Quote(b.String())
}

// nameScanner reads one JSON value from data, checking member names
// against a Go type. Its walk keeps to the order in which a walk of
// Decoder.Token would meet each check, each refusal and each malformation:
//
//   - a value whose type has no member names is read whole, as
//     Decoder.Decode reads it (encoding/json's scanner: the grammar, no
//     control byte in a string, \u with four hex digits, at most
//     maxScannerDepth levels within the value), before anything after it;
//   - a member name is read whole (a valid string) and looked up before
//     the colon after it is looked for;
//   - a scalar where a struct or a list goes is read whole, as Token reads
//     it: a number too large for a float64 is an error of Token's, which
//     leaves the payload to the decoder, not a refusal;
//   - an object or array where the other goes is refused at its opening
//     bracket;
//   - a number ends where its grammar does (0 in 01, 1 in 1x): what follows
//     it is looked at as the next token, as by the Decoder.
//
// The path of the value being walked (the member or element, from the
// top) is passed down the walk, on the stack, not kept in the scanner.
type nameScanner struct {
	data []byte
	i    int    // where the next token starts, or whitespace before it
	name []byte // an escaped member name, unescaped; kept from one to the next
}

// maxScannerDepth is encoding/json's bound on the nesting of a value
// Decoder.Decode reads (its scanner's maxNestingDepth): a skipped value
// that opens more levels than this within itself is malformed to it.
const maxScannerDepth = 10000

// peek skips whitespace and returns the byte after it, 0 at the end of
// data. A 0 byte in data is never JSON, so every caller treats the two
// alike: as data that stops being JSON there.
func (s *nameScanner) peek() byte {
	for ; s.i < len(s.data); s.i++ {
		switch c := s.data[s.i]; c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}

// walk reads the next value, checking the member names of every object in
// it that decodes into a struct of t; path is the value's. It returns
// errLeaveToDecoder where data stops being JSON.
func (s *nameScanner) walk(t reflect.Type, path []pathStep) error {
	t, walked := walkedType(t)
	if !walked {
		return s.skip()
	}
	return s.value(t, path)
}

// walkedType returns t without its pointers, and whether the walk
// descends into a value of it (whether it has member names to check).
func walkedType(t reflect.Type) (reflect.Type, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, hasMemberNames(t)
}

// value reads the next value, of t, a type walkedType returns for walking.
func (s *nameScanner) value(t reflect.Type, path []pathStep) error {
	switch c := s.peek(); {
	case c == 'n':
		if !s.literal("null") {
			return errLeaveToDecoder
		}
		return nil // null leaves a struct or a list as it is
	case c == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		return s.list(t.Elem(), path)
	case c == '{' && t.Kind() == reflect.Struct:
		return s.object(t, path)
	case c == '[' || c == '{':
		return wrongKind(t, path)
	default:
		if !s.scalar() {
			return errLeaveToDecoder
		}
		if reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return nil // a scalar it may decode from as text: the decoder proper decides
		}
		// A scalar, an array for a struct or an object for a list.
		// encoding/json refuses it too, but only after decoding the rest
		// of the payload, at a cost for each element of a list of them.
		return wrongKind(t, path)
	}
}

// wrongKind refuses the value at path, which cannot be what t (a struct,
// or a list) decodes from.
func wrongKind(t reflect.Type, path []pathStep) error {
	want := "an object"
	if t.Kind() != reflect.Struct {
		want = "an array"
	}
	where := "the payload"
	if len(path) > 0 {
		where = "field " + renderPath(path, "")
	}
	return ErrInvalidRequest.With("payload is not valid: %s must be %s", where, want)
}

// list reads the array at s.i, each element against elem.
func (s *nameScanner) list(elem reflect.Type, path []pathStep) error {
	elem, walked := walkedType(elem)
	s.i++ // '['
	for i := 0; ; i++ {
		switch c := s.peek(); {
		case c == ']':
			s.i++
			return nil
		case c == '}' || c == 0:
			return errLeaveToDecoder
		case i > 0:
			if c != ',' {
				return errLeaveToDecoder
			}
			s.i++
		}
		var err error
		if walked {
			err = s.value(elem, append(path, pathStep{index: i}))
		} else {
			err = s.skip()
		}
		if err != nil {
			return err
		}
	}
}

// object reads the object at s.i, its members against the fields of the
// struct type t.
func (s *nameScanner) object(t reflect.Type, path []pathStep) error {
	fields := structFields(t)
	var onStack [32]bool // room for any struct this package decodes
	sent := append(onStack[:0], make([]bool, len(fields.types))...)
	s.i++ // '{'
	for n := 0; ; n++ {
		c := s.peek()
		if c == '}' {
			s.i++
			return nil
		}
		if n > 0 {
			if c != ',' {
				return errLeaveToDecoder
			}
			s.i++
			c = s.peek()
		}
		if c != '"' {
			return errLeaveToDecoder
		}
		start := s.i
		plain, ok := s.str()
		if !ok {
			return errLeaveToDecoder
		}
		raw := s.data[start+1 : s.i-1]
		var i int
		var known bool
		if plain {
			i, known = fields.index[string(raw)]
		} else {
			s.name = appendUnquoted(s.name[:0], raw)
			i, known = fields.index[string(s.name)]
		}
		if !known {
			name := string(raw)
			if !plain {
				name = string(s.name)
			}
			return ErrInvalidRequest.With("payload is not valid: unknown field %s", renderPath(path, name))
		}
		if sent[i] {
			return ErrInvalidRequest.With("payload is not valid: field %s is sent twice", renderPath(path, fields.names[i]))
		}
		sent[i] = true
		if s.peek() != ':' {
			return errLeaveToDecoder
		}
		s.i++
		var err error
		if ft := fields.walked[i]; ft != nil {
			// The name is the field's: equal to the member's, without a copy.
			err = s.value(ft, append(path, pathStep{name: fields.names[i], member: true}))
		} else {
			err = s.skip()
		}
		if err != nil {
			return err
		}
	}
}

// scalar reads the string, number, true or false at s.i, as Token reads
// one where a struct or a list goes; false if there is none, or if it is a
// number a float64 cannot hold (Token's error, converting it).
func (s *nameScanner) scalar() bool {
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == '-' || '0' <= c && c <= '9':
		start := s.i
		if !s.number() {
			return false
		}
		_, err := strconv.ParseFloat(string(s.data[start:s.i]), 64)
		return err == nil
	}
	return false
}

// skip reads one value at s.i as Decoder.Decode does, and skips it;
// errLeaveToDecoder if there is none. It keeps the kinds of the
// arrays and objects it is inside as a stack of bits, not by recursion.
func (s *nameScanner) skip() error {
	var open bitStack
value: // a value is expected
	for {
		switch c := s.peek(); {
		case c == '{':
			if !open.push(true) {
				return errLeaveToDecoder
			}
			s.i++
			if s.peek() == '}' {
				s.i++
				open.pop()
				break
			}
			if !s.key() {
				return errLeaveToDecoder
			}
			continue value
		case c == '[':
			if !open.push(false) {
				return errLeaveToDecoder
			}
			s.i++
			if s.peek() == ']' {
				s.i++
				open.pop()
				break
			}
			continue value
		case c == '"':
			if _, ok := s.str(); !ok {
				return errLeaveToDecoder
			}
		case c == 't':
			if !s.literal("true") {
				return errLeaveToDecoder
			}
		case c == 'f':
			if !s.literal("false") {
				return errLeaveToDecoder
			}
		case c == 'n':
			if !s.literal("null") {
				return errLeaveToDecoder
			}
		case c == '-' || '0' <= c && c <= '9':
			if !s.number() {
				return errLeaveToDecoder
			}
		default:
			return errLeaveToDecoder
		}
		// After a value: the end of the value skipped, a comma, or the
		// end of the array or object it is in.
		for open.n > 0 {
			inObject := open.top()
			switch c := s.peek(); {
			case c == ',':
				s.i++
				if inObject && !s.key() {
					return errLeaveToDecoder
				}
				continue value
			case c == '}' && inObject, c == ']' && !inObject:
				s.i++
				open.pop()
			default:
				return errLeaveToDecoder
			}
		}
		return nil
	}
}

// key reads a member name (not looked at) and the colon after it.
func (s *nameScanner) key() bool {
	if s.peek() != '"' {
		return false
	}
	if _, ok := s.str(); !ok {
		return false
	}
	if s.peek() != ':' {
		return false
	}
	s.i++
	return true
}

// literal reads the literal lit (true, false or null) at s.i.
func (s *nameScanner) literal(lit string) bool {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number reads the number at s.i, as far as its grammar goes: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *nameScanner) number() bool {
	d, i := s.data, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = digits(d, i+1)
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		if i+1 >= len(d) || d[i+1] < '0' || d[i+1] > '9' {
			return false
		}
		i = digits(d, i+1)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		i = digits(d, i)
	}
	s.i = i
	return true
}

// digits returns where the run of decimal digits at d[i] ends.
func digits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}

// str reads the string whose opening quote is at s.i, leaving s.i after
// its closing quote. ok is false if it is not a valid JSON string (no
// closing quote, a control byte, an unknown escape, \\u without four hex
// digits); plain, that its content is its value: no escape, valid UTF-8.
func (s *nameScanner) str() (plain, ok bool) {
	d := s.data
	escaped, high := false, false
	for i := s.i + 1; ; {
		i = plainRun(d, i)
		if i >= len(d) {
			return false, false
		}
		switch c := d[i]; {
		case c == '"':
			plain = !escaped && (!high || utf8.Valid(d[s.i+1:i]))
			s.i = i + 1
			return plain, true
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return false, false
			}
			switch d[i+1] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default: // not ASCII
			high = true
			i++
		}
	}
}

// plainRun returns where the run of bytes at d[i] that a string takes as
// they are (ASCII, not a control byte, a quote or a backslash) ends. It
// tests 8 bytes at a time: v has a byte below n (n <= 0x80) if
// (v - n*lsb) &^ v & msb is not 0, a byte equal to b if v^(b*lsb) has a
// byte below 1, and a byte not ASCII if v & msb is not 0.
func plainRun(d []byte, i int) int {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(d); i += 8 {
		v := binary.LittleEndian.Uint64(d[i:])
		q, b := v^('"'*lsb), v^('\\'*lsb)
		if ((v-0x20*lsb)&^v|(q-lsb)&^q|(b-lsb)&^b|v)&msb != 0 {
			break
		}
	}
	for ; i < len(d); i++ {
		if c := d[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// appendUnquoted appends to dst the value of the string whose content
// (between its quotes) is raw, which str accepted, as encoding/json
// unquotes it: each escape decoded, a surrogate pair of \u escapes made one
// rune, and a lone surrogate, or a byte that is not UTF-8, made U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	for r := 0; r < len(raw); {
		switch c := raw[r]; {
		case c == '\\':
			switch raw[r+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(raw[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(raw) && raw[r] == '\\' && raw[r+1] == 'u' {
						if pair := utf16.DecodeRune(rr, hex4(raw[r+2:])); pair != unicode.ReplacementChar {
							dst = utf8.AppendRune(dst, pair)
							r += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, raw[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// hex4 is the value of the four hex digits that start h.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// bitStack is a stack of bits: whether each array or object that skip is
// inside is an object. The first 128 levels are kept inline; deeper ones
// (up to maxScannerDepth) in a slice made for them when first needed.
type bitStack struct {
	n    int
	low  [2]uint64
	high []uint64
}

// push puts b on the stack; false if the stack already holds
// maxScannerDepth bits.
func (b *bitStack) push(bit bool) bool {
	if b.n >= maxScannerDepth {
		return false
	}
	w := b.word(b.n)
	if bit {
		*w |= 1 << (b.n % 64)
	} else {
		*w &^= 1 << (b.n % 64)
	}
	b.n++
	return true
}

func (b *bitStack) pop() { b.n-- }

// top returns the bit on top of the stack, which is not empty.
func (b *bitStack) top() bool { return *b.word(b.n - 1)>>((b.n-1)%64)&1 == 1 }

// word returns the word that holds bit i.
func (b *bitStack) word(i int) *uint64 {
	w := i / 64
	if w < len(b.low) {
		return &b.low[w]
	}
	if b.high == nil { // once, for all the levels encoding/json allows
		b.high = make([]uint64, (maxScannerDepth+63)/64-len(b.low))
	}
	return &b.high[w-len(b.low)]
}

// hasMemberNames reports whether a value of type t may hold an object whose
// member names the walk checks: a struct decoded field by field, or a
// slice or array of one.
func hasMemberNames(t reflect.Type) bool {
	for t != nil {
		if reflect.PointerTo(t).Implements(unmarshalerType) {
			return false
		}
		switch t.Kind() {
		case reflect.Struct:
			return true
		case reflect.Pointer, reflect.Slice, reflect.Array:
			t = t.Elem()
		default:
			return false
		}
	}
	return false
}

// skipValue consumes one JSON value: the decoder scans it and hands over a
// slice of its own buffer, which is neither kept nor copied.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// fieldSet is the JSON names of a struct type's fields, each with its
// index in types.
type fieldSet struct {
	index map[string]int
	names []string // the JSON name of each field, as index has it
	types []reflect.Type
	// walked is, for each field, the type walkedType makes of its type
	// when the walk descends into its value, else nil: hasMemberNames,
	// asked once per field, not once per member.
	walked []reflect.Type
}

// fieldSets caches structFields: the walk asks once per object, and a list
// of structs is as many objects as the payload has room for.
var fieldSets sync.Map // reflect.Type -> *fieldSet

func structFields(t reflect.Type) *fieldSet {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{index: map[string]int{}}
	for name, typ := range jsonFields(t) {
		fs.index[name] = len(fs.types)
		fs.names = append(fs.names, name)
		fs.types = append(fs.types, typ)
		wt, walked := walkedType(typ)
		if !walked {
			wt = nil
		}
		fs.walked = append(fs.walked, wt)
	}
	actual, _ := fieldSets.LoadOrStore(t, fs)
	return actual.(*fieldSet)
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					out[n] = typ
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
