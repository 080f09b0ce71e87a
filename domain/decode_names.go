package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// errMalformed stops the walk; the decoder proper then reports the JSON
// error with its usual message.
var errMalformed = errors.New("malformed JSON")

// checkMemberNames walks data against t and refuses a member name that is
// not exactly a field's JSON name (encoding/json matches case-insensitively)
// and a member sent twice (encoding/json keeps the last). It names the
// member, never a value.
func checkMemberNames(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := walkNames(dec, t, ""); !errors.Is(err, errMalformed) {
		return err
	}
	return nil
}

func walkNames(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return errMalformed
	}
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		return nil
	}
	structural := t != nil && !reflect.PointerTo(t).Implements(unmarshalerType)
	switch delim {
	case '[':
		var elem reflect.Type
		if structural && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkNames(dec, elem, path+"[]"); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		if structural && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return errMalformed
			}
			name, _ := kt.(string)
			if fields != nil {
				ft, known := fields[name]
				if !known {
					return ErrInvalidRequest.With("payload is not valid: unknown field %q", path+name)
				}
				if seen[name] {
					return ErrInvalidRequest.With("payload is not valid: field %q is sent twice", path+name)
				}
				seen[name] = true
				if err := walkNames(dec, ft, path+name+"."); err != nil {
					return err
				}
				continue
			}
			if err := walkNames(dec, nil, path); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errMalformed
	}
	return nil
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
