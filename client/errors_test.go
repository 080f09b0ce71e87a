package client

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestErrorTypesMatchTheWorker keeps the client's sentinels in step with
// the worker's: every sentinel(...) of domain/errors.go and keyring.go has
// a client sentinel of the same error_type and status, and the client has
// none the worker lacks. (The client does not import domain: the files are
// parsed.)
func TestErrorTypesMatchTheWorker(t *testing.T) {
	t.Parallel()
	worker := map[string]int{}
	for _, file := range []string{"errors.go", "keyring.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "domain", file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "sentinel" {
				return true
			}
			typ, err1 := strconv.Unquote(call.Args[0].(*ast.BasicLit).Value)
			status, err2 := strconv.Atoi(call.Args[1].(*ast.BasicLit).Value)
			if err1 != nil || err2 != nil {
				t.Fatalf("unexpected sentinel call in domain/errors.go: %v %v", err1, err2)
			}
			worker[typ] = status
			return true
		})
	}
	if len(worker) < 20 {
		t.Fatalf("found %d sentinels in domain/errors.go; the parser is out of step", len(worker))
	}
	mine := map[string]int{}
	for _, s := range sentinels {
		mine[s.Type] = s.StatusCode
	}
	for typ, status := range worker {
		if got, ok := mine[typ]; !ok || got != status {
			t.Errorf("worker error_type %s (%d): client has %d, %v", typ, status, got, ok)
		}
	}
	for typ := range mine {
		if _, ok := worker[typ]; !ok {
			t.Errorf("client error_type %s is unknown to the worker", typ)
		}
	}
	if len(mine) != len(sentinels) {
		t.Error("two client sentinels share an error_type")
	}
}

// TestErrorIs: refusals compare by error_type, through wrapping, and never
// with transport failures.
func TestErrorIs(t *testing.T) {
	t.Parallel()
	e := &Error{StatusCode: 401, Type: "token_replayed", Message: "this token was already used", ID: "r-1"}
	wrapped := fmt.Errorf("exchange: %w", e)
	if !errors.Is(wrapped, ErrTokenReplayed) || errors.Is(wrapped, ErrSessionNotFound) || errors.Is(wrapped, ErrNoResponders) {
		t.Error("errors.Is does not compare by type")
	}
	if got := e.Error(); got != "tat: token_replayed (401): this token was already used [id r-1]" {
		t.Errorf("Error() = %q", got)
	}
	var nilErr *Error
	if e.Is(nilErr) {
		t.Error("Is(nil *Error)")
	}

	te := &TransportError{Op: "attest", Subject: "tat.attest.requests", ID: "r-2", Err: ErrNoResponders, Cause: nats.ErrNoResponders}
	if !errors.Is(te, ErrNoResponders) || !errors.Is(te, nats.ErrNoResponders) || errors.Is(te, ErrTokenReplayed) {
		t.Error("TransportError does not unwrap to its causes only")
	}
	if !strings.Contains(te.Error(), "call again with the same id") {
		t.Errorf("Error() = %q", te.Error())
	}
	stored := &TransportError{Op: "attest", Subject: "s", ID: "r-3", Stored: true, Stream: "TAT_ATTEST", Sequence: 7, Err: context.Canceled}
	if !errors.Is(stored, context.Canceled) || !strings.Contains(stored.Error(), "TAT_ATTEST seq 7") {
		t.Errorf("Error() = %q", stored.Error())
	}
	if !errors.Is(ErrTimeout, context.DeadlineExceeded) {
		t.Error("ErrTimeout does not wrap context.DeadlineExceeded")
	}
}

// TestNoWorkerImports: the client is imported by other modules' services;
// it must not pull in the worker, its handlers, store, commands or domain.
func TestNoWorkerImports(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/tat-worker/attest/") {
				t.Errorf("%s imports %s: the client must depend on no package of the worker", name, p)
			}
			if first := strings.Split(p, "/")[0]; strings.Contains(first, ".") && !strings.HasPrefix(p, "github.com/nats-io/nats.go") {
				t.Errorf("%s imports %s: the client's only dependency is nats.go", name, p)
			}
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("checked %d files", checked)
	}
	if _, err := os.Stat("doc.go"); err != nil {
		t.Fatal("run from the package directory")
	}
}
