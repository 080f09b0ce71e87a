package jwks

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Defaults of ClientOptions and Fetcher.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMaxBody = 512 << 10
	// maxRedirects is how many redirects one fetch may follow.
	maxRedirects = 3
)

var (
	// ErrForbiddenAddress is returned (wrapped) when a fetch would connect to
	// an address a third-party URL must never reach: loopback, private,
	// link-local (cloud metadata), CGNAT, multicast and the like.
	ErrForbiddenAddress = errors.New("jwks: address not allowed")
	// ErrInsecureURL is returned (wrapped) for a URL, or a redirect, that is
	// not https.
	ErrInsecureURL = errors.New("jwks: url must be https")
	// ErrBodyTooLarge is returned (wrapped) when a response body exceeds the
	// cap.
	ErrBodyTooLarge = errors.New("jwks: response body too large")
	// errTooManyRedirects stops a redirect chain longer than maxRedirects.
	errTooManyRedirects = errors.New("jwks: too many redirects")
)

// ClientOptions configures NewHTTPClient. The zero value is the strict
// production setting.
type ClientOptions struct {
	// AllowLocal permits http:// URLs and every address (loopback, private,
	// link-local...). It is for development and tests only
	// (TAT_JWKS_ALLOW_LOCAL=true).
	AllowLocal bool
	// Timeout bounds one whole fetch, redirects and body included
	// (default DefaultTimeout).
	Timeout time.Duration
	// MaxBody caps the bytes read from any response body
	// (default DefaultMaxBody).
	MaxBody int64

	// testAllow lets a test in this package reach exactly one otherwise
	// forbidden address (an httptest server) while every other address stays
	// guarded. Unexported so production code cannot set it.
	testAllow netip.AddrPort
	// testRoots trusts a test server's certificate.
	testRoots *x509.CertPool
}

// NewHTTPClient returns a client that is safe for fetching URLs named by
// third parties: https only (also on every redirect, at most 3), no proxy
// from the environment (a proxy would dial on our behalf and defeat the
// guard), a dialer that refuses every address CheckIP refuses — checked on
// the IP actually dialed, so after DNS resolution and on each redirect hop —
// a whole-request timeout and response bodies capped at MaxBody bytes
// (reading past the cap fails with ErrBodyTooLarge). AllowLocal lifts the
// address and scheme rules, never the caps.
func NewHTTPClient(opts ClientOptions) *http.Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	g := guard{allowLocal: opts.AllowLocal, allow: opts.testAllow}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: g.control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.testRoots},
	}
	return &http.Client{
		Transport: &guardTransport{base: tr, guard: g, maxBody: opts.MaxBody},
		Timeout:   opts.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return errTooManyRedirects
			}
			return g.checkScheme(req)
		},
	}
}

// guard holds the address and scheme rules of one client.
type guard struct {
	allowLocal bool
	allow      netip.AddrPort
}

func (g guard) checkScheme(req *http.Request) error {
	if req.URL.Scheme == "https" || (g.allowLocal && req.URL.Scheme == "http") {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrInsecureURL, req.URL.Redacted())
}

// control runs for every connection attempt, after name resolution, with the
// literal address being dialed.
func (g guard) control(network, address string, _ syscall.RawConn) error {
	if g.allowLocal {
		return nil
	}
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %s", ErrForbiddenAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrForbiddenAddress, address, err)
	}
	if g.allow.IsValid() && ap.Addr().Unmap() == g.allow.Addr() && ap.Port() == g.allow.Port() {
		return nil
	}
	return CheckIP(ap.Addr())
}

// guardTransport enforces the scheme on every request (the first one and
// each redirect) and caps response bodies.
type guardTransport struct {
	base    http.RoundTripper
	guard   guard
	maxBody int64
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.guard.checkScheme(req); err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.maxBody}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// underlying transport.
func (t *guardTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// cappedBody fails with ErrBodyTooLarge once more than left bytes are read.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		kept := int(b.left)
		b.left = -1
		return kept, ErrBodyTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// forbidden lists the ranges CheckIP refuses beyond what netip's predicates
// already cover.
var forbidden = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
}

// Prefixes whose addresses embed an IPv4 address, which is then checked too.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64L    = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// CheckIP reports why ip must not be dialed for a third-party URL, or nil
// when it may. It refuses loopback, private (RFC 1918, fc00::/7), link-local
// (169.254/16 with the cloud metadata address, fe80::/10), unspecified,
// multicast, CGNAT (100.64/10), 0/8, broadcast and other reserved or
// documentation ranges, in both IPv4 and IPv4-mapped IPv6 spelling, and
// IPv6 transition addresses (NAT64, 6to4) that embed a refused IPv4 address.
func CheckIP(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	ip = ip.Unmap().WithZone("")
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, why)
	}
	switch {
	case ip.IsUnspecified():
		return refuse("unspecified")
	case ip.IsLoopback():
		return refuse("loopback")
	case ip.IsPrivate():
		return refuse("private")
	case ip.IsLinkLocalUnicast():
		return refuse("link-local (incl. cloud metadata)")
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return refuse("multicast")
	}
	for _, f := range forbidden {
		if f.prefix.Contains(ip) {
			return refuse(f.why)
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 [4]byte
		switch {
		case nat64.Contains(ip):
			copy(v4[:], b[12:16])
		case nat64L.Contains(ip):
			return refuse("local-use NAT64")
		case sixToFour.Contains(ip):
			copy(v4[:], b[2:6])
		default:
			return nil
		}
		if err := CheckIP(netip.AddrFrom4(v4)); err != nil {
			return fmt.Errorf("%w (embedded in %s)", err, ip)
		}
	}
	return nil
}
