// Package admin serves churnwatch's HTTP API (contract §6): liveness,
// readiness, Prometheus metrics, one customer's state and the alert index. It reads through the
// small Source interface and knows nothing of Kafka or Redis.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Source is what the API reads.
type Source interface {
	// Ready returns nil when the processor can do its work.
	Ready(ctx context.Context) error
	// Customer returns the customer's state as JSON, nil when unknown or erased.
	Customer(ctx context.Context, id string) ([]byte, error)
	// Alerts returns alert data objects of a status, newest first.
	Alerts(ctx context.Context, status string, limit int) ([]json.RawMessage, error)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

// Handler returns the API's routes; metrics, if not nil, serves /metrics.
func Handler(src Source, metrics http.Handler, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n")) //nolint:errcheck // client gone
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := src.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck // client gone
	})
	mux.HandleFunc("GET /api/customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, err := src.Customer(r.Context(), r.PathValue("id"))
		if err != nil {
			log.Error("read customer", "err", err)
			jsonError(w, http.StatusInternalServerError, "could not read the customer")
			return
		}
		if b == nil {
			jsonError(w, http.StatusNotFound, "unknown customer")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b) //nolint:errcheck // client gone
	})
	mux.HandleFunc("GET /api/alerts", func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		if status == "" {
			status = "firing"
		}
		if status != "firing" && status != "resolved" {
			jsonError(w, http.StatusBadRequest, "status must be firing or resolved")
			return
		}
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 10000 {
				jsonError(w, http.StatusBadRequest, "limit must be 1–10000")
				return
			}
			limit = n
		}
		as, err := src.Alerts(r.Context(), status, limit)
		if err != nil {
			log.Error("list alerts", "err", err)
			jsonError(w, http.StatusInternalServerError, "could not list alerts")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(as) //nolint:errcheck // client gone
	})
	return mux
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg}) //nolint:errcheck // client gone
}
