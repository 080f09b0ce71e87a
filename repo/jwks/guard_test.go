package jwks

import (
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ip      string
		allowed bool
	}{
		{"IPv4 loopback", "127.0.0.1", false},
		{"IPv4 loopback range", "127.8.9.10", false},
		{"IPv6 loopback", "::1", false},
		{"RFC 1918 10/8", "10.1.2.3", false},
		{"RFC 1918 172.16/12", "172.16.0.1", false},
		{"RFC 1918 192.168/16", "192.168.1.1", false},
		{"cloud metadata", "169.254.169.254", false},
		{"IPv6 link-local", "fe80::1", false},
		{"IPv6 unique local", "fc00::1", false},
		{"AWS IPv6 metadata", "fd00:ec2::254", false},
		{"CGNAT", "100.64.0.1", false},
		{"Alibaba metadata in CGNAT", "100.100.100.200", false},
		{"Oracle metadata", "192.0.0.192", false},
		{"unspecified IPv4", "0.0.0.0", false},
		{"this-network 0/8", "0.1.2.3", false},
		{"unspecified IPv6", "::", false},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", false},
		{"IPv4-mapped metadata", "::ffff:169.254.169.254", false},
		{"IPv4-mapped private", "::ffff:10.0.0.1", false},
		{"IPv4-compatible loopback", "::127.0.0.1", false},
		{"multicast", "224.0.0.1", false},
		{"IPv6 multicast", "ff02::1", false},
		{"broadcast", "255.255.255.255", false},
		{"reserved 240/4", "240.0.0.1", false},
		{"NAT64 of private", "64:ff9b::a00:1", false},
		{"6to4 of loopback", "2002:7f00:1::1", false},
		{"documentation", "2001:db8::1", false},
		{"public IPv4", "8.8.8.8", true},
		{"public IPv4 just past CGNAT", "100.128.0.1", true},
		{"public IPv6", "2606:4700:4700::1111", true},
		{"IPv4-mapped public", "::ffff:1.1.1.1", true},
		{"NAT64 of public", "64:ff9b::808:808", true},
		{"local-use NAT64 of public (RFC 8215)", "64:ff9b:1::808:808", false},
		{"local-use NAT64, last address", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", false},
		{"just below local-use NAT64", "64:ff9b:0:ffff:ffff:ffff:ffff:ffff", true},
		{"just above local-use NAT64", "64:ff9b:2::808:808", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckIP(netip.MustParseAddr(tc.ip))
			if tc.allowed && err != nil {
				t.Fatalf("CheckIP(%s) = %v, want allowed", tc.ip, err)
			}
			if !tc.allowed && !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("CheckIP(%s) = %v, want ErrForbiddenAddress", tc.ip, err)
			}
		})
	}
	if err := CheckIP(netip.Addr{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("CheckIP(invalid) = %v, want ErrForbiddenAddress", err)
	}
}

// countingHandler counts requests and answers 200.
func countingHandler(n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
}

func certPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func TestClientRefusesHTTP(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(countingHandler(&hits))
	t.Cleanup(srv.Close)

	_, err := NewHTTPClient(ClientOptions{}).Get(srv.URL)
	if !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("GET %s: err = %v, want ErrInsecureURL", srv.URL, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the server was reached")
	}

	resp, err := NewHTTPClient(ClientOptions{AllowLocal: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("AllowLocal: GET %s: %v", srv.URL, err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("AllowLocal: hits = %d, want 1", hits.Load())
	}
}

func TestClientRefusesLoopbackAfterResolution(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(countingHandler(&hits))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	client := NewHTTPClient(ClientOptions{testRoots: certPool(srv)})
	for _, u := range []string{
		srv.URL, // literal 127.0.0.1
		"https://localhost:" + strconv.Itoa(port) + "/jwks", // a name resolving to loopback
	} {
		_, err := client.Get(u)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("GET %s: err = %v, want ErrForbiddenAddress", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the server was reached %d times", hits.Load())
	}
}

func TestClientRedirects(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int64
	target := httptest.NewTLSServer(countingHandler(&targetHits))
	t.Cleanup(target.Close)
	targetPort := strconv.Itoa(target.Listener.Addr().(*net.TCPAddr).Port)
	plain := httptest.NewServer(countingHandler(&targetHits))
	t.Cleanup(plain.Close)

	var entryHits atomic.Int64
	entry := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entryHits.Add(1)
		switch r.URL.Path {
		case "/ok":
			_, _ = io.WriteString(w, "ok")
		case "/to-loopback":
			http.Redirect(w, r, target.URL+"/jwks", http.StatusFound)
		case "/to-localhost":
			http.Redirect(w, r, "https://localhost:"+targetPort+"/jwks", http.StatusFound)
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
		default: // /loop: redirect to itself forever
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	t.Cleanup(entry.Close)
	entryAddr := netip.MustParseAddrPort(entry.Listener.Addr().String())

	// The test hook admits exactly the entry server; everything else stays
	// guarded as in production.
	client := NewHTTPClient(ClientOptions{testAllow: entryAddr, testRoots: certPool(entry)})

	resp, err := client.Get(entry.URL + "/ok")
	if err != nil {
		t.Fatalf("GET the admitted server: %v", err)
	}
	resp.Body.Close()

	tests := []struct {
		path string
		want error
	}{
		{"/to-loopback", ErrForbiddenAddress},
		{"/to-localhost", ErrForbiddenAddress},
		{"/to-http", ErrInsecureURL},
		{"/loop", errTooManyRedirects},
	}
	for _, tc := range tests {
		_, err := client.Get(entry.URL + tc.path)
		if !errors.Is(err, tc.want) {
			t.Errorf("GET %s: err = %v, want %v", tc.path, err, tc.want)
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("redirect targets were reached %d times", n)
	}
	if n := entryHits.Load(); n != 1+3+1+maxRedirects {
		t.Errorf("entry hits = %d, want %d (the loop stops after %d redirects)", n, 1+3+1+maxRedirects, maxRedirects)
	}
}

func TestClientCapsBodyAndTime(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 4096))
	}))
	t.Cleanup(srv.Close)
	client := NewHTTPClient(ClientOptions{AllowLocal: true, MaxBody: 1000, Timeout: testTimeout})
	resp, err := client.Get(srv.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrBodyTooLarge) || len(b) != 1000 {
		t.Fatalf("read %d bytes, err %v; want 1000 bytes and ErrBodyTooLarge", len(b), err)
	}

	client = NewHTTPClient(ClientOptions{AllowLocal: true, Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err = client.Get(srv.URL + "/slow")
	var uerr *url.Error
	if !errors.As(err, &uerr) || !uerr.Timeout() {
		t.Fatalf("GET /slow: err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %s", d)
	}
}
