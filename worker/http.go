package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpServer serves /healthz (the process is up), /readyz (200 once the
// streams, consumers, view and store are ready and NATS and the store
// answer), /metrics and /.well-known/jwks.json.
func (w *Worker) httpHandler(reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if why := w.notReady(); why != "" {
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
			return
		}
		writeJSON(rw, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /.well-known/jwks.json", func(rw http.ResponseWriter, _ *http.Request) {
		is := w.issuer.Load()
		if is == nil {
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		rw.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(rw, http.StatusOK, is.PublicJWKS(w.now()))
	})
	return mux
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

// serveHTTP listens on addr until ctx ends.
func serveHTTP(ctx context.Context, addr string, h http.Handler, listening chan<- string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if listening != nil {
		listening <- l.Addr().String()
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
