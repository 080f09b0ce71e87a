package domain

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// TestFoldKeyCoversNFKCAndCaseFolding: for every rune of the first two
// planes (where every letter-like compatibility form lives) that NFKC then
// full case folding turn into ASCII, the partial decoder's fold key of a
// name holding it is that ASCII in upper case, as a field's key is: a
// member so named is refused as a variant of the field. So are the runes
// whose lower or upper case is ASCII ("ı", "İ", the Kelvin sign).
func TestFoldKeyCoversNFKCAndCaseFolding(t *testing.T) {
	// Not parallel: AllocsPerRun.
	var f folder
	n := 0
	for r := rune(0x80); r <= 0x1FFFF; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		name := "x" + string(r)
		got := string(f.key(name))
		ref := strings.ToUpper(cases.Fold().String(norm.NFKC.String(name)))
		if isASCII(ref) {
			n++
			if got != ref {
				t.Errorf("%U %q: key %q, want %q", r, string(r), got, ref)
			}
		}
		if lo, up := unicode.ToLower(r), unicode.ToUpper(r); (lo < utf8.RuneSelf || up < utf8.RuneSelf) && !isASCII(got) {
			t.Errorf("%U %q: key %q, want it ASCII (its lower or upper case is)", r, string(r), got)
		}
	}
	if n < 1000 {
		t.Errorf("only %d runes fold to ASCII: the reference is wrong", n)
	}
	if testing.AllocsPerRun(10, func() { f.key("ｓession_ｒevision") }) != 0 {
		t.Error("a key allocates")
	}
}
