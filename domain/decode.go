package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// MaxPayloadBytes is the largest command payload the worker decodes.
const MaxPayloadBytes = 64 << 10

// DecodeStrict decodes one JSON object into v: an unknown field, a wrong
// type, trailing data, a payload that is not an object, one over 64 KiB or
// one nesting objects and arrays deeper than MaxJSONDepth is refused with
// invalid_request. The message never echoes payload values. Its cost in
// memory and time is linear in len(data): the nesting is checked by one
// pass over the bytes before encoding/json reads them.
func DecodeStrict(data []byte, v any) error {
	if len(data) > MaxPayloadBytes {
		return ErrInvalidRequest.With("payload is %d bytes, over the 64 KiB limit", len(data))
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ErrInvalidRequest.With("payload must be a JSON object")
	}
	if err := checkNesting(data, "payload"); err != nil {
		return err
	}
	if err := checkMemberNames(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ErrInvalidRequest.Wrap(err, "payload is not valid: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrInvalidRequest.With("payload has trailing data after the JSON object")
	}
	return nil
}

// checkNesting refuses JSON whose objects and arrays nest deeper than
// MaxJSONDepth with invalid_request, naming what (the payload, a member)
// and no value. It reads data once and allocates nothing, so it belongs
// before any decoder sees data.
func checkNesting(data []byte, what string) error {
	if jsonTooDeep(data) {
		return ErrInvalidRequest.With("%s is not valid: it nests objects and arrays deeper than %d levels", what, MaxJSONDepth)
	}
	return nil
}

// describeJSONError names the field at fault without quoting values, which
// may be secrets.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q must be %s", typeErr.Field, typeErr.Type.Kind())
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	if bytes.HasPrefix([]byte(msg), []byte("json: unknown field")) {
		return msg[len("json: "):]
	}
	return "malformed JSON"
}
