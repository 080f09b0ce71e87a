package handlers_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
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
// repo/mongostore. Who builds the handlers is TestOnlyComposeBuildsHandlers.
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

// composeDir is the composition root that builds the handlers.
const composeDir = "cmd/attestd/compose"

// TestOnlyComposeBuildsHandlers keeps cmd/attestd/compose the only place
// that builds handlers: no other non-test file of the module (worker/ and
// its helpers included, so the integration tests run the production
// wiring) names a use case of handlers (a type with an exported method
// taking a context: Attest, ProfileChange, Sessions, Reads, Completer, ...)
// or one of its New* constructors. The worker sees the handlers only
// through its small interfaces (worker.Handlers). One exception: the
// worker owns the in-memory view (handlers.View, handlers.NewView), its
// state that its feed keeps current and its metrics count; the view
// decides nothing.
func TestOnlyComposeBuildsHandlers(t *testing.T) {
	root := ".."
	useCases := handlerUseCases(t, ".")
	for _, want := range []string{"Attest", "ProfileChange", "UserChange", "KeyRotation", "Sessions", "Reads", "Completer"} {
		if !useCases[want] {
			t.Fatalf("handlers.%s is not found a use case: the search is broken", want)
		}
	}
	allowed := func(name string) bool { return name == "View" || name == "NewView" }
	checked := 0
	perDir := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || rel == "handlers" || rel == composeDir) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		perDir[strings.Split(rel, "/")[0]]++
		local := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == module+"handlers" {
				local = "handlers"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		switch local {
		case "":
			return nil
		case ".", "_":
			t.Errorf("%s imports handlers as %q: name it, so that what it uses can be told", path, local)
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local || allowed(sel.Sel.Name) {
				return true
			}
			if useCases[sel.Sel.Name] || strings.HasPrefix(sel.Sel.Name, "New") {
				t.Errorf("%s names handlers.%s: only %s builds the handlers; the worker takes them as worker.Handlers", path, sel.Sel.Name, composeDir)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 || perDir["worker"] == 0 || perDir["cmd"] == 0 {
		t.Fatalf("only %d files checked (%v): the walk is broken", checked, perDir)
	}
}

// handlerUseCases returns the types of package handlers (in dir) that have
// an exported method whose first parameter is a context.Context.
func handlerUseCases(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() || len(fn.Type.Params.List) == 0 {
				continue
			}
			if sel, ok := fn.Type.Params.List[0].Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Context" {
				continue
			}
			recv := fn.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			if id, ok := recv.(*ast.Ident); ok && id.IsExported() {
				out[id.Name] = true
			}
		}
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("use cases of handlers: %s", strings.Join(names, ", "))
	return out
}
