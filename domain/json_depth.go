package domain

// MaxJSONDepth bounds how deeply objects and arrays may nest in the JSON
// the worker reads from outside: a command payload (its own object is level
// 1, so session_custom_claims may nest 31 levels inside it), custom claims
// parsed on their own, a token's header and payload, and what other
// packages decode with DecodeStrictObject (a JWK set). No real claim set or
// key set comes near it; encoding/json allows 10,000 levels, and walking
// those is where a small payload became a large cost.
const MaxJSONDepth = 32

// jsonTooDeep reports whether objects and arrays in data nest deeper than
// MaxJSONDepth. It is one pass over the bytes that allocates nothing, meant
// to run before any decoder sees data: it skips strings (escapes included,
// so a quote or bracket inside a string counts for nothing) and counts
// brackets and braces outside them. It validates nothing else. Data that
// is malformed may be reported either way: where it stops being JSON, a
// decoder stops too, and the depth below that point is counted exactly.
func jsonTooDeep(data []byte) bool { return jsonDeeperThan(data, MaxJSONDepth) }

// jsonDeeperThan is jsonTooDeep with a bound of max levels.
func jsonDeeperThan(data []byte, max int) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data); i++ {
				if c := data[i]; c == '\\' {
					i++ // the escaped byte, whatever it is, cannot end the string
				} else if c == '"' {
					break
				}
			}
		case '[', '{':
			depth++
			if depth > max {
				return true
			}
		case ']', '}':
			if depth == 0 {
				return false // not JSON from here on: no decoder goes further
			}
			depth--
		}
	}
	return false
}
