package domain

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
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
// Its cost is linear in len(data), given the nesting bound DecodeStrict
// checks first: the walk descends only into values whose type has member
// names to check (structs, and slices and arrays of them); any other value
// (a custom claims object, a string) is skipped whole without being copied.
// The member path is kept as a stack of names and made into a string only
// for a refusal.
func checkMemberNames(data []byte, t reflect.Type) error {
	w := nameWalker{dec: json.NewDecoder(bytes.NewReader(data)), path: make([]pathStep, 0, MaxJSONDepth)}
	if err := w.walk(t); !errors.Is(err, errLeaveToDecoder) {
		return err
	}
	return nil
}

// nameWalker reads one JSON value by tokens, checking member names against
// a Go type.
type nameWalker struct {
	dec  *json.Decoder
	path []pathStep // from the top: the member or element being walked
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

// pathTo renders the path of member name under the current path (of the
// current value when name is ""), as profile.attribute_mapping.email or
// user.emails[2].email.
func (w *nameWalker) pathTo(name string) string {
	var b strings.Builder
	for _, s := range w.path {
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

// walk reads the next value, checking the member names of every object in
// it that decodes into a struct of t.
func (w *nameWalker) walk(t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !hasMemberNames(t) {
		var skip skipValue
		if w.dec.Decode(&skip) != nil {
			return errLeaveToDecoder
		}
		return nil
	}
	tok, err := w.dec.Token()
	if err != nil {
		return errLeaveToDecoder
	}
	delim, _ := tok.(json.Delim)
	switch {
	case tok == nil:
		return nil // null leaves a struct or a list as it is
	case delim == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i := 0; w.dec.More(); i++ {
			w.path = append(w.path, pathStep{index: i})
			if err := w.walk(t.Elem()); err != nil {
				return err
			}
			w.path = w.path[:len(w.path)-1]
		}
	case delim == '{' && t.Kind() == reflect.Struct:
		fields := structFields(t)
		var onStack [32]bool // room for any struct this package decodes
		sent := append(onStack[:0], make([]bool, len(fields.types))...)
		for w.dec.More() {
			kt, err := w.dec.Token()
			if err != nil {
				return errLeaveToDecoder
			}
			name, _ := kt.(string)
			i, known := fields.index[name]
			if !known {
				return ErrInvalidRequest.With("payload is not valid: unknown field %s", w.pathTo(name))
			}
			if sent[i] {
				return ErrInvalidRequest.With("payload is not valid: field %s is sent twice", w.pathTo(name))
			}
			sent[i] = true
			w.path = append(w.path, pathStep{name: name, member: true})
			if err := w.walk(fields.types[i]); err != nil {
				return err
			}
			w.path = w.path[:len(w.path)-1]
		}
	case delim == 0 && reflect.PointerTo(t).Implements(textUnmarshalerType):
		return nil // a scalar it may decode from as text: the decoder proper decides
	default:
		// A scalar, an array for a struct or an object for a list.
		// encoding/json refuses it too, but only after decoding the rest
		// of the payload, at a cost for each element of a list of them.
		want := "an object"
		if t.Kind() != reflect.Struct {
			want = "an array"
		}
		where := "the payload"
		if len(w.path) > 0 {
			where = "field " + w.pathTo("")
		}
		return ErrInvalidRequest.With("payload is not valid: %s must be %s", where, want)
	}
	if _, err := w.dec.Token(); err != nil { // the closing delimiter
		return errLeaveToDecoder
	}
	return nil
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
	types []reflect.Type
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
		fs.types = append(fs.types, typ)
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
