// Package admin serves churnwatch's HTTP API (contract §6): liveness,
// readiness, Prometheus metrics, one customer's state and the alert index,
// and the webhook side: silences, dead letters, suppressed notifications,
// endpoints. It works through small interfaces and knows nothing of Kafka
// or Redis.
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

// Source is what the API reads of the processor.
type Source interface {
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
		err := srv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// Connections still busy (or opened and never used: net/http
			// waits 5 s for those) are closed rather than waited for.
			err = srv.Close()
		}
		done <- err
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

// API is what the admin server serves; nil parts are left out.
type API struct {
	// Ready returns nil when the process can do its work (/readyz).
	Ready      func(ctx context.Context) error
	Source     Source       // /api/customers, /api/alerts
	Deliveries Deliveries   // /api/silences, /api/webhooks/…
	Metrics    http.Handler // /metrics
	Log        *slog.Logger
	// KPIs returns the retention KPI report (/api/kpis).
	KPIs func(ctx context.Context) (any, error)
}

// Handler returns the API's routes.
func (a API) Handler() http.Handler {
	mux := http.NewServeMux()
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	if a.Metrics != nil {
		mux.Handle("GET /metrics", a.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n")) //nolint:errcheck // client gone
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if a.Ready == nil {
			w.Write([]byte("ready\n")) //nolint:errcheck // client gone
			return
		}
		if err := a.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck // client gone
	})
	if a.Source != nil {
		sourceRoutes(mux, a.Source, log)
	}
	if a.Deliveries != nil {
		deliveryRoutes(mux, a.Deliveries, log)
	}
	kpiRoutes(mux, a.KPIs, log)
	return mux
}

func sourceRoutes(mux *http.ServeMux, src Source, log *slog.Logger) {
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
		limit, ok := limitParam(w, r)
		if !ok {
			return
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
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// limitParam reads ?limit= (default 100, 1–10000); false when it answered
// a bad request.
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 100, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10000 {
		jsonError(w, http.StatusBadRequest, "limit must be 1–10000")
		return 0, false
	}
	return n, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // client gone
}
