package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
)

// checkMemberNamesTokens is checkMemberNames as it was before the byte
// scanner: a walk of encoding/json's Decoder.Token stream. It is kept as
// the oracle the scanner is compared with (FuzzCheckMemberNamesMatchesTokenWalk)
// and the "before" of BenchmarkCheckMemberNames. Only its name, its
// walker's name and the path rendering (renderPath, the old pathTo's body,
// moved) changed; the type helpers (hasMemberNames, structFields) are the
// production ones, which the scanner did not change.
func checkMemberNamesTokens(data []byte, t reflect.Type) error {
	w := tokenNameWalker{dec: json.NewDecoder(bytes.NewReader(data)), path: make([]pathStep, 0, MaxJSONDepth)}
	if err := w.walk(t); !errors.Is(err, errLeaveToDecoder) {
		return err
	}
	return nil
}

// tokenNameWalker reads one JSON value by tokens, checking member names
// against a Go type.
type tokenNameWalker struct {
	dec  *json.Decoder
	path []pathStep // from the top: the member or element being walked
}

func (w *tokenNameWalker) pathTo(name string) string { return renderPath(w.path, name) }

// walk reads the next value, checking the member names of every object in
// it that decodes into a struct of t.
func (w *tokenNameWalker) walk(t reflect.Type) error {
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
