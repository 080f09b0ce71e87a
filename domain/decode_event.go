package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unicode/utf8"
)

// MaxBusJSONBytes is the largest JSON the worker reads back from the bus
// (an event, a shared JWK set entry): NATS's largest message.
const MaxBusJSONBytes = 1 << 20

// maxBusJSONDepth bounds the nesting of JSON read back from the bus. An
// event nests its command's content two levels deeper than the command
// (its data, and the session or user that holds it) and commands nest at
// most MaxJSONDepth, so this leaves room.
const maxBusJSONDepth = 2 * MaxJSONDepth

// DecodeStrictBus decodes JSON the worker reads back from the bus (an
// event and its data, a key-value entry) into v as DecodeStrict decodes a
// command (member names exactly the fields', never case-folded, no member
// twice, no unknown field, nothing after the value), with bounds of its
// own: at most maxBytes (0: MaxBusJSONBytes), valid UTF-8, nesting at most
// maxBusJSONDepth. The size, UTF-8 and nesting are checked by linear passes
// before any decoder reads data. Keys inside maps (custom claims, trusted
// metadata) are data and are not checked for duplicates: the worker reads
// only what a worker signed, which encoding/json wrote, once per key.
// Errors name a field or an offset, never a value.
func DecodeStrictBus(data []byte, v any, maxBytes int) error {
	if err := checkBusBounds(data, maxBytes); err != nil {
		return err
	}
	if err := checkMemberNames(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not valid: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errJSONTrailing
	}
	return nil
}

// checkBusBounds runs the linear checks every decode of bus JSON starts
// with: at most maxBytes (0: MaxBusJSONBytes), valid UTF-8, nesting at
// most maxBusJSONDepth.
func checkBusBounds(data []byte, maxBytes int) error {
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
	return nil
}
