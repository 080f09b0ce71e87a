package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// update rewrites the golden files with what the commands print:
//
//	go test ./cmd/attestctl/ -run TestCommandsAgainstAWorker -update
var update = flag.Bool("update", false, "rewrite testdata/*.golden with what the commands print")

// testdataDir is testdata/ of this package, wherever a test has gone
// since (t.Chdir).
var testdataDir = func() string {
	d, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	return d
}()

// normalizer makes output deterministic: times, session ids, random
// request ids, key ids and bearer secrets become placeholders. Each
// placeholder has the length of what it replaces, so table columns stay
// aligned; the same session id gets the same placeholder everywhere.
type normalizer struct {
	sessions map[string]string
	kids     map[string]string
}

func newNormalizer() *normalizer {
	return &normalizer{sessions: map[string]string{}, kids: map[string]string{}}
}

var (
	timePattern    = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	sessionPattern = regexp.MustCompile(`\bsession-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	hexIDPattern   = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	kidPattern     = regexp.MustCompile(`\b(kid: +)[A-Za-z0-9_-]{43}\b`)
	tokenPattern   = regexp.MustCompile(`\btat_st_[A-Za-z0-9_.…-]+`)
	jwtPattern     = regexp.MustCompile(`\beyJ[A-Za-z0-9_.…-]+`)
	signingKID     = regexp.MustCompile(`\btat-[A-Za-z0-9_-]+`)
)

func (n *normalizer) normalize(s string) string {
	s = timePattern.ReplaceAllString(s, "YYYY-MM-DDThh:mm:ssZ")
	s = sessionPattern.ReplaceAllStringFunc(s, func(id string) string {
		if p, ok := n.sessions[id]; ok {
			return p
		}
		p := fmt.Sprintf("session-00000000-0000-0000-0000-%012d", len(n.sessions)+1)
		n.sessions[id] = p
		return p
	})
	s = signingKID.ReplaceAllStringFunc(s, func(kid string) string {
		if len(kid) != len("tat-")+16 { // the worker's kids: tat- and 16 base64url
			return kid
		}
		if p, ok := n.kids[kid]; ok {
			return p
		}
		p := fmt.Sprintf("tat-KID%013d", len(n.kids)+1)
		n.kids[kid] = p
		return p
	})
	s = hexIDPattern.ReplaceAllString(s, strings.Repeat("x", 32))
	s = kidPattern.ReplaceAllString(s, "${1}"+strings.Repeat("K", 43))
	s = tokenPattern.ReplaceAllString(s, "tat_st_…")
	s = jwtPattern.ReplaceAllString(s, "eyJ…")
	return s
}

// golden compares got, normalised, with testdata/name.golden, or writes
// it there with -update.
func golden(t *testing.T, n *normalizer, name, got string) {
	t.Helper()
	got = n.normalize(got)
	path := filepath.Join(testdataDir, name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("%s differs (run with -update to accept):\n--- want\n%s--- got\n%s", path, want, got)
	}
}

// fieldOf returns the value of a "name: value" line.
func fieldOf(t *testing.T, out, name string) string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s: line in\n%s", name, out)
	return ""
}

func TestNormalizerKeepsColumns(t *testing.T) {
	n := newNormalizer()
	in := "session-0b7f6c7e-1d2a-8c3b-9f00-aa11bb22cc33  2026-11-25T12:00:00Z  x\n" +
		"session-1b7f6c7e-1d2a-8c3b-9f00-aa11bb22cc33  2026-11-25T12:00:00Z  y\n" +
		"again session-0b7f6c7e-1d2a-8c3b-9f00-aa11bb22cc33 request_id: 0123456789abcdef0123456789abcdef\n" +
		"session_token: tat_st_AbC-123_x session_jwt: eyJa.b-c.d_e\n"
	got := n.normalize(in)
	want := "session-00000000-0000-0000-0000-000000000001  YYYY-MM-DDThh:mm:ssZ  x\n" +
		"session-00000000-0000-0000-0000-000000000002  YYYY-MM-DDThh:mm:ssZ  y\n" +
		"again session-00000000-0000-0000-0000-000000000001 request_id: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" +
		"session_token: tat_st_… session_jwt: eyJ…\n"
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
	for i, line := range strings.Split(in, "\n") {
		if len(strings.Split(got, "\n")[i]) != len(line) && i < 3 {
			t.Errorf("line %d changed length", i)
		}
	}
}
