package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"regexp"
)

var commandIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ValidCommandID reports whether id is a request_id / change_id of the
// contract: 1 to 128 characters of A-Za-z0-9._:-
func ValidCommandID(id string) bool { return commandIDPattern.MatchString(id) }

// Prefixes of generated identifiers.
const (
	ProfileIDPrefix = "trusted-auth-token-profile-"
	UserIDPrefix    = "user-"
	SessionIDPrefix = "session-"
)

// NewUUID returns a random RFC 4122 version 4 UUID.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return formatUUID(b, 4)
}

// DerivedUUID returns a UUID (version 8, RFC 9562) fixed by the inputs, so a
// redelivered command derives the same identifiers as its first attempt.
func DerivedUUID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	var b [16]byte
	copy(b[:], h.Sum(nil))
	return formatUUID(b, 8)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
