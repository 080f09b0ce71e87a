package domain_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// TestDecodeBase64URLAlphabet: every character of the base64url alphabet
// decodes, at each end of its range; the characters just outside each
// range are refused, so one value has exactly one spelling.
func TestDecodeBase64URLAlphabet(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	want, _ := base64.RawURLEncoding.DecodeString(alphabet)
	got, err := domain.DecodeBase64URL(alphabet)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("DecodeBase64URL(alphabet) = %x, %v; want %x", got, err, want)
	}
	for _, s := range []string{"AAAA", "ZZZZ", "aaaa", "zzzz", "0000", "9999", "----", "____"} {
		want, _ := base64.RawURLEncoding.DecodeString(s)
		if got, err := domain.DecodeBase64URL(s); err != nil || !bytes.Equal(got, want) {
			t.Errorf("DecodeBase64URL(%q) = %x, %v; want %x", s, got, err, want)
		}
	}
	for _, c := range []string{"@", "[", "`", "{", ":", ".", "~", "\x7f", "\x80", "é"} {
		if _, err := domain.DecodeBase64URL("AAA" + c); err == nil {
			t.Errorf("DecodeBase64URL(%q) accepted a character outside base64url", "AAA"+c)
		}
	}
	for s, problem := range map[string]string{
		"AA+A": "standard", "AA/A": "standard", "AAA=": "padding",
		"AA A": "whitespace", "AA\tA": "whitespace", "AA\nA": "whitespace", "AA\rA": "whitespace", "AA\vA": "whitespace", "AA\fA": "whitespace",
	} {
		if _, err := domain.DecodeBase64URL(s); err == nil || !strings.Contains(err.Error(), problem) {
			t.Errorf("DecodeBase64URL(%q) = %v, want an error naming %s", s, err, problem)
		}
	}
	// Nonzero trailing bits: "AB" would be the same byte as "AA".
	if _, err := domain.DecodeBase64URL("AB"); err == nil {
		t.Error(`DecodeBase64URL("AB") accepted nonzero trailing bits`)
	}
}
