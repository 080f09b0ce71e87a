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
// handlers or worker; only worker and cmd touch NATS. worker depends on
// the store through its own small interfaces: only the composition root
// (cmd/attestd) and the test and embedded helpers under worker/ name
// repo/mongostore.
func TestDependencyDirection(t *testing.T) {
	root := ".."
	rules := []struct {
		dir     string
		allowed func(path string) bool
		skip    []string // subdirectories of dir not held to the rule
	}{
		{"domain", func(p string) bool {
			return !strings.Contains(strings.Split(p, "/")[0], ".") ||
				strings.HasPrefix(p, "golang.org/x/text/") || strings.HasPrefix(p, "github.com/lestrrat-go/jwx/v3")
		}, nil},
		{"handlers", func(p string) bool {
			return !strings.Contains(strings.Split(p, "/")[0], ".") || p == module+"domain"
		}, nil},
		{"repo", func(p string) bool {
			return !strings.HasPrefix(p, module+"handlers") && !strings.HasPrefix(p, module+"worker") &&
				!strings.HasPrefix(p, "github.com/nats-io/")
		}, nil},
		{"worker", func(p string) bool {
			return p != module+"repo/mongostore" && !strings.HasPrefix(p, module+"repo/mongostore/")
		}, []string{"workertest", "embedded", "chaos"}},
	}
	checked := 0
	perDir := map[string]int{}
	for _, r := range rules {
		err := filepath.WalkDir(filepath.Join(root, r.dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				for _, sk := range r.skip {
					if path == filepath.Join(root, r.dir, sk) {
						return filepath.SkipDir
					}
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
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
			perDir[r.dir]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d files checked: the walk is broken", checked)
	}
	for _, r := range rules {
		if perDir[r.dir] == 0 {
			t.Errorf("no file of %s/ checked: the walk is broken", r.dir)
		}
	}
}
