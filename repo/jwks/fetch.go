package jwks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

// StatusError is returned by Fetch when the server answers anything but
// 200 OK.
type StatusError struct {
	URL    string // redacted
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("jwks: GET %s: status %d", e.URL, e.Status)
}

// FetchResult is one successfully fetched and parsed JWK Set.
type FetchResult struct {
	// Keys are the usable keys (never empty).
	Keys []domain.PublicKey
	// Raw is the accepted keys as a JWK Set of public members only (see
	// PublicSet), for sharing with other workers.
	Raw []byte
	// MaxAge is the Cache-Control max-age, 0 when the response has none.
	// max-age=0, no-cache and no-store are reported as one second ("as
	// short as allowed") so that 0 keeps meaning "no directive".
	MaxAge time.Duration
}

// Fetcher downloads JWK Sets over HTTP. The zero value fetches with a strict
// NewHTTPClient and the default body cap.
type Fetcher struct {
	// Client does the request; nil means NewHTTPClient(ClientOptions{}).
	// Give it a client from NewHTTPClient: Fetcher itself does not guard
	// addresses.
	Client *http.Client
	// MaxBody caps the body (default DefaultMaxBody); more is an error.
	MaxBody int64
}

// defaultClient is shared by zero-value Fetchers.
var defaultClient = NewHTTPClient(ClientOptions{})

// Fetch GETs url and parses it with ParseJWKS. It fails on transport
// errors, any status but 200 (*StatusError), a body over MaxBody
// (ErrBodyTooLarge) and a set with no usable key. ctx bounds the request on
// top of the client's own timeout.
func (f *Fetcher) Fetch(ctx context.Context, url string) (FetchResult, error) {
	client := f.Client
	if client == nil {
		client = defaultClient
	}
	limit := f.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return FetchResult{}, fmt.Errorf("jwks: request %s: %w", Redact(url), err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return FetchResult{}, fmt.Errorf("jwks: GET %s: %w", Redact(url), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection may be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return FetchResult{}, &StatusError{URL: Redact(url), Status: resp.StatusCode}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return FetchResult{}, fmt.Errorf("jwks: read %s: %w", Redact(url), err)
	}
	if int64(len(raw)) > limit {
		return FetchResult{}, fmt.Errorf("jwks: read %s: %w (over %d bytes)", Redact(url), ErrBodyTooLarge, limit)
	}
	keys, public, err := PublicSet(raw)
	if err != nil {
		return FetchResult{}, fmt.Errorf("jwks: parse %s: %w", Redact(url), err)
	}
	return FetchResult{Keys: keys, Raw: public, MaxAge: maxAge(resp.Header)}, nil
}

// maxAge reads the max-age directive of Cache-Control; see FetchResult.
func maxAge(h http.Header) time.Duration {
	var age time.Duration
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return time.Second
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || secs < 0 {
					continue
				}
				const maxSecs = int64(365 * 24 * time.Hour / time.Second)
				age = time.Duration(min(max(secs, 1), maxSecs)) * time.Second
			}
		}
	}
	return age
}
