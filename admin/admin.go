// Package admin serves churnwatch's HTTP API (contract §6): liveness,
// readiness, Prometheus metrics, one customer's state and the alert index,
// and the webhook side: silences, dead letters, suppressed notifications,
// endpoints. Routes that read customer data or change state need a bearer
// token. It works through small interfaces and knows nothing of Kafka or
// Redis.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
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

// API is what the admin server serves; nil parts are left out. Routes
// that read customer data or change state (/api/customers, /api/alerts,
// silences, webhooks) need Authorization: Bearer Token; /healthz, /readyz,
// /metrics and the aggregate /api/kpis are open.
type API struct {
	// Token is the bearer token of the protected routes. Empty: they
	// answer 403, unless Unauthenticated.
	Token string
	// Unauthenticated serves the protected routes without a token, for an
	// API that only an authenticating proxy or a private network reaches.
	Unauthenticated bool
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
	protected := guarded{mux: mux, auth: a.authorize}
	if a.Source != nil {
		sourceRoutes(protected, a.Source, log)
	}
	if a.Deliveries != nil {
		deliveryRoutes(protected, a.Deliveries, log)
	}
	kpiRoutes(mux, a.KPIs, log)
	return mux
}

// router registers handlers: a ServeMux, or guarded.
type router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// guarded registers handlers that run only when auth lets the request in.
type guarded struct {
	mux  *http.ServeMux
	auth func(http.ResponseWriter, *http.Request) bool
}

func (g guarded) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	g.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if g.auth(w, r) {
			h(w, r)
		}
	})
}

// authorize lets a request in when it carries the bearer token (compared
// in constant time) or the API is Unauthenticated; otherwise it answers
// 401 with WWW-Authenticate, or 403 when no token is configured.
func (a API) authorize(w http.ResponseWriter, r *http.Request) bool {
	if a.Unauthenticated {
		return true
	}
	if a.Token == "" {
		jsonError(w, http.StatusForbidden, "this route needs an admin token and none is configured: set admin_token (CHURNWATCH_ADMIN_TOKEN)")
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") && tokenEqual(strings.TrimSpace(token), a.Token) {
		return true
	}
	challenge := `Bearer realm="churnwatch"`
	if ok {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	jsonError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <admin_token>")
	return false
}

// tokenEqual compares in constant time, whatever the lengths: it compares
// digests.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func sourceRoutes(mux router, src Source, log *slog.Logger) {
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
