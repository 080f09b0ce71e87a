package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

var (
	errJSONNotUTF8    = errors.New("not valid UTF-8")
	errJSONNotObject  = errors.New("not a JSON object")
	errJSONTrailing   = errors.New("data after the JSON object")
	errJSONTooDeep    = fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
	errJSONDuplicate  = errors.New("duplicate member name")
	errJSONUnexpected = errors.New("unexpected JSON token")
)

// DecodeStrictObject decodes data as exactly one JSON object the way the
// worker reads a token's header and payload, for other JSON that comes from
// outside and must be read the same way by every reader (a JWK set). It
// refuses what encoding/json's Unmarshal lets through and parsers disagree
// on: invalid UTF-8, duplicate member names at any depth (compared after
// unescaping), nesting deeper than MaxJSONDepth, and anything after the
// object. Member names are kept exactly as sent (after unescaping): no
// case folding. Numbers come back as json.Number. The error names the
// problem and quotes nothing of data.
func DecodeStrictObject(data []byte) (map[string]any, error) {
	obj, err := decodeStrictObject(data)
	if err != nil {
		return nil, strictJSONError{err}
	}
	return obj, nil
}

// strictJSONError says what DecodeStrictObject refused in the words of
// jsonProblem; the decoder's own error, which may quote a character of the
// data, is only unwrapped.
type strictJSONError struct{ err error }

func (e strictJSONError) Error() string { return jsonProblem(e.err) }
func (e strictJSONError) Unwrap() error { return e.err }

// decodeStrictObject decodes data as exactly one JSON object, refusing what
// encoding/json's Unmarshal lets through and parsers disagree on: invalid
// UTF-8, duplicate member names at any depth (compared after unescaping),
// nesting deeper than MaxJSONDepth (checked by a linear pre-pass before the
// decoder reads anything, and again as it reads), and anything after the
// object. Numbers come back as json.Number.
func decodeStrictObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errJSONNotUTF8
	}
	if jsonTooDeep(data) {
		return nil, errJSONTooDeep
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errJSONNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errJSONNotObject
	}
	obj, err := readObject(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errJSONTrailing
	}
	return obj, nil
}

// readObject reads the members of an object whose '{' was just read.
func readObject(dec *json.Decoder, depth int) (map[string]any, error) {
	if depth > MaxJSONDepth {
		return nil, errJSONTooDeep
	}
	obj := map[string]any{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return obj, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errJSONUnexpected
		}
		if _, dup := obj[key]; dup {
			return nil, errJSONDuplicate
		}
		v, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

// readArray reads the elements of an array whose '[' was just read.
func readArray(dec *json.Decoder, depth int) ([]any, error) {
	if depth > MaxJSONDepth {
		return nil, errJSONTooDeep
	}
	arr := []any{}
	for {
		if !dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			if d, ok := tok.(json.Delim); ok && d == ']' {
				return arr, nil
			}
			return nil, errJSONUnexpected
		}
		v, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
}

// readValue reads one value: a scalar, or an object or array one level
// deeper than depth.
func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return readObject(dec, depth+1)
		case '[':
			return readArray(dec, depth+1)
		}
		return nil, errJSONUnexpected
	case string, json.Number, bool, nil:
		return t, nil
	}
	return nil, errJSONUnexpected
}

// jsonProblem names what was wrong with a header or payload in words that
// carry none of its content.
func jsonProblem(err error) string {
	for _, known := range []error{errJSONNotUTF8, errJSONNotObject, errJSONTrailing, errJSONTooDeep, errJSONDuplicate} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return "malformed JSON"
}
