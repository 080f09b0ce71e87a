//go:build chaos

// Command ferretd runs the embedded FerretDB (SQLite) of worker/embedded as
// a process of its own, for the chaos tests: built without -race, so the
// store a -race test run talks to is as fast as the one attestd embeds, and
// it can be killed and started again on the same address and directory.
//
// Usage: ferretd <host:port> <dir>. It prints "ready" once it accepts
// connections and runs until SIGTERM, SIGINT or SIGKILL.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tat-worker/attest/worker/embedded"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ferretd <host:port> <dir>")
		os.Exit(2)
	}
	fe, err := embedded.StartFerret(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretd:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fe.Stop()
}
