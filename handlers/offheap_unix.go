//go:build unix

package handlers

import (
	"fmt"
	"syscall"
)

// mapBytes maps n bytes of zeroed, private, anonymous memory outside the Go
// heap (see viewmem.go for why); unmapBytes gives them back. Failing to map
// is as fatal as failing to allocate.
func mapBytes(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(fmt.Sprintf("view: mapping %d bytes: %v", n, err))
	}
	return b
}

func unmapBytes(b []byte) {
	if err := syscall.Munmap(b); err != nil {
		panic(fmt.Sprintf("view: unmapping %d bytes: %v", len(b), err))
	}
}
