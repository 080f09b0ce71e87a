//go:build chaos

// Package chaos proves issue 5: every attest request ends in exactly one
// outcome and no session is made twice, while workers are killed, drained,
// multiplied, and while NATS or the store go away. Workers run as child
// processes of the attestd binary built once per run. NATS runs in the test
// process (or as nats-server processes for the cluster test). FerretDB runs
// as a process of its own (worker/embedded's server, built without -race by
// ./ferretd): in a -race test binary the SQLite engine is instrumented and
// some twenty times slower, and the suite would measure the race detector
// rather than the worker. Everything listens on 127.0.0.1 free ports and
// keeps its files in temporary directories.
//
// Run with: go test -race -tags chaos -run Chaos ./worker/chaos/...
package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	// binDir holds the binaries built for this run.
	binDir string
	// attestdBin is cmd/attestd, built in TestMain (with -race when the
	// tests run with -race).
	attestdBin string
	// ferretdBin is ./ferretd: the embedded FerretDB as a process, built
	// without -race (see ferretProc).
	ferretdBin string
	// moduleRoot is the module's directory, two levels up.
	moduleRoot string

	natsServerOnce sync.Once
	natsServerBin  string
	natsServerErr  error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	if moduleRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	if binDir, err = os.MkdirTemp("", "tat-chaos-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	defer os.RemoveAll(binDir)
	attestdBin = filepath.Join(binDir, "attestd")
	args := []string{"build", "-o", attestdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if err := goBuild(append(args, "./cmd/attestd")...); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build attestd:", err)
		return 2
	}
	ferretdBin = filepath.Join(binDir, "ferretd")
	if err := goBuild("build", "-tags", "chaos", "-o", ferretdBin, "./worker/chaos/ferretd"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build ferretd:", err)
		return 2
	}
	return m.Run()
}

// natsServerBinary builds the nats-server of go.mod once, for the tests
// that run NATS as separate processes.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	natsServerOnce.Do(func() {
		natsServerBin = filepath.Join(binDir, "nats-server")
		natsServerErr = goBuild("build", "-o", natsServerBin, "github.com/nats-io/nats-server/v2")
	})
	if natsServerErr != nil {
		t.Fatalf("build nats-server: %v", natsServerErr)
	}
	return natsServerBin
}

func goBuild(args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	return nil
}
