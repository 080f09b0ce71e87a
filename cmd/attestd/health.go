package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck is `attestd healthcheck`, for container health checks (the
// image has no shell or HTTP client): it asks this host's worker, at
// TAT_HTTP_ADDR, whether it is ready, and returns the exit status: 0 when
// /readyz answers 200, else 1 with the reason on w.
func healthcheck(getenv func(string) string, w io.Writer) int {
	addr := getenv("TAT_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(w, "attestd healthcheck: TAT_HTTP_ADDR %q: %v\n", addr, err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening on every address: ask the loopback
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		fmt.Fprintf(w, "attestd healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(w, "attestd healthcheck: not ready: %d %s\n", resp.StatusCode, body)
		return 1
	}
	return 0
}
