package handlers_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tat-worker/attest/"

// TestDependencyDirection keeps the house's shape: domain is pure (standard
// library, golang.org/x/text for Unicode normalization, jwx for JOSE; no
// driver, no NATS), handlers know only domain, repo never reaches up into
// handlers or worker; only worker and cmd touch NATS.
func TestDependencyDirection(t *testing.T) {
	root := ".."
	rules := []struct {
		dir     string
		allowed func(path string) bool
	}{
		{"domain", func(p string) bool {
			return !strings.Contains(strings.Split(p, "/")[0], ".") ||
				strings.HasPrefix(p, "golang.org/x/text/") || strings.HasPrefix(p, "github.com/lestrrat-go/jwx/v3")
		}},
		{"handlers", func(p string) bool {
			return !strings.Contains(strings.Split(p, "/")[0], ".") || p == module+"domain"
		}},
		{"repo", func(p string) bool {
			return !strings.HasPrefix(p, module+"handlers") && !strings.HasPrefix(p, module+"worker") &&
				!strings.HasPrefix(p, "github.com/nats-io/")
		}},
	}
	checked := 0
	for _, r := range rules {
		err := filepath.WalkDir(filepath.Join(root, r.dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !r.allowed(p) {
					t.Errorf("%s imports %s: breaks the dependency direction of %s/", path, p, r.dir)
				}
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d files checked: the walk is broken", checked)
	}
}
