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
// event nests its command's content one or two levels deeper than the
// command did (commands are bounded more tightly), so this leaves room.
const maxBusJSONDepth = 64

// DecodeStrictBus decodes JSON the worker reads back from the bus (an
// event and its data, a key-value entry) into v, as strictly as commands
// and with bounds of its own: at most maxBytes (0: MaxBusJSONBytes), valid
// UTF-8, nesting at most 64 deep, member names exactly the fields' (never
// case-folded), no member twice at any depth (inside maps too), no unknown
// field, nothing after the value. A cheap pass checks size, UTF-8, depth
// and duplicates before anything is decoded. Errors name a field or an
// offset, never a value.
func DecodeStrictBus(data []byte, v any, maxBytes int) error {
	if maxBytes <= 0 {
		maxBytes = MaxBusJSONBytes
	}
	if len(data) > maxBytes {
		return fmt.Errorf("%d bytes, over the limit of %d", len(data), maxBytes)
	}
	if !utf8.Valid(data) {
		return errJSONNotUTF8
	}
	if err := checkShape(data); err != nil {
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

// checkShape reads data as one JSON value, token by token, and refuses
// nesting deeper than maxBusJSONDepth and a member name twice in one
// object (compared after unescaping). It keeps only the names of the
// objects open at the time.
func checkShape(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type level struct {
		object  bool
		names   map[string]bool
		wantKey bool
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if len(stack) > 0 {
				return errors.New("truncated JSON")
			}
			return nil
		}
		if err != nil {
			return errors.New("malformed JSON")
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].wantKey = true // this value ends a member
				}
				if len(stack) >= maxBusJSONDepth {
					return errJSONTooDeep
				}
				stack = append(stack, level{object: d == '{', names: map[string]bool{}, wantKey: true})
			default:
				stack = stack[:top]
			}
			continue
		}
		if top < 0 || !stack[top].object {
			continue
		}
		if stack[top].wantKey {
			name, _ := tok.(string)
			if stack[top].names[name] {
				return errJSONDuplicate
			}
			stack[top].names[name] = true
			stack[top].wantKey = false
			continue
		}
		stack[top].wantKey = true // a scalar member value
	}
}
