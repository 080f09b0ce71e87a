//go:build !unix

package handlers

// Without mmap the view's memory is ordinary heap memory: correct, but
// counted in the Go heap's growth like the rest.
func mapBytes(n int) []byte { return make([]byte, n) }

func unmapBytes([]byte) {}
