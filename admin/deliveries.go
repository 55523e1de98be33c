package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/churnwatch/churnwatch/webhook"
)

// Deliveries is the webhook side of the API. Errors wrapping
// webhook.ErrInvalid answer 400, webhook.ErrNotFound 404.
type Deliveries interface {
	// Silences returns the silences, expired ones too when all is set.
	Silences(ctx context.Context, all bool) ([]webhook.Silence, error)
	AddSilence(ctx context.Context, s webhook.Silence) (webhook.Silence, error)
	ExpireSilence(ctx context.Context, id string) (webhook.Silence, error)
	// Endpoints describes each endpoint: where it is, whether it is
	// disabled, how many deliveries wait and how many are dead.
	Endpoints(ctx context.Context) (any, error)
	Enable(ctx context.Context, endpoint string) error
	// DeadLetters lists dead letters of one endpoint ("" for all), newest first.
	DeadLetters(ctx context.Context, endpoint string, limit int) (any, error)
	// Replay makes dead letters due again: ids of endpoint, or all of them
	// when ids is empty; "" means every endpoint. It returns how many.
	Replay(ctx context.Context, endpoint string, ids []string) (int, error)
	// Suppressed lists notifications not sent (caps, silences, holdout), newest first.
	Suppressed(ctx context.Context, limit int) (any, error)
}

// silenceRequest is the body of POST /api/silences: until, or a duration
// such as "72h" from now.
type silenceRequest struct {
	CustomerID string    `json:"customer_id"`
	Rule       string    `json:"rule"`
	Until      time.Time `json:"until"`
	Duration   string    `json:"duration"`
	Comment    string    `json:"comment"`
	CreatedBy  string    `json:"created_by"`
}

type replayRequest struct {
	Endpoint string   `json:"endpoint"`
	IDs      []string `json:"ids"`
}

func deliveryRoutes(mux router, d Deliveries, log *slog.Logger) {
	fail := func(w http.ResponseWriter, what string, err error) {
		switch {
		case errors.Is(err, webhook.ErrInvalid):
			jsonError(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, webhook.ErrNotFound):
			jsonError(w, http.StatusNotFound, err.Error())
		default:
			log.Error(what, "err", err)
			jsonError(w, http.StatusInternalServerError, "could not "+what)
		}
	}
	list := func(what string, get func(r *http.Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			v, err := get(r)
			if err != nil {
				fail(w, what, err)
				return
			}
			writeJSON(w, http.StatusOK, v)
		}
	}
	mux.HandleFunc("GET /api/silences", list("list silences", func(r *http.Request) (any, error) {
		return d.Silences(r.Context(), r.URL.Query().Get("all") == "true")
	}))
	mux.HandleFunc("POST /api/silences", func(w http.ResponseWriter, r *http.Request) {
		var req silenceRequest
		if err := decodeBody(r, &req); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		s := webhook.Silence{CustomerID: req.CustomerID, Rule: req.Rule, Until: req.Until, Comment: req.Comment, CreatedBy: req.CreatedBy}
		if req.Duration != "" {
			dur, err := time.ParseDuration(req.Duration)
			if err != nil || dur <= 0 || !req.Until.IsZero() {
				jsonError(w, http.StatusBadRequest, "give until (RFC 3339) or a positive duration such as \"72h\", not both")
				return
			}
			s.Until = time.Now().Add(dur)
		}
		s, err := d.AddSilence(r.Context(), s)
		if err != nil {
			fail(w, "add the silence", err)
			return
		}
		writeJSON(w, http.StatusCreated, s)
	})
	mux.HandleFunc("DELETE /api/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, err := d.ExpireSilence(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, "expire the silence", err)
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("GET /api/webhooks", list("list endpoints", func(r *http.Request) (any, error) {
		return d.Endpoints(r.Context())
	}))
	mux.HandleFunc("POST /api/webhooks/{endpoint}/enable", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Enable(r.Context(), r.PathValue("endpoint")); err != nil {
			fail(w, "enable the endpoint", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"enabled": r.PathValue("endpoint")})
	})
	mux.HandleFunc("GET /api/webhooks/dead-letters", func(w http.ResponseWriter, r *http.Request) {
		limit, ok := limitParam(w, r)
		if !ok {
			return
		}
		list("list dead letters", func(r *http.Request) (any, error) {
			return d.DeadLetters(r.Context(), r.URL.Query().Get("endpoint"), limit)
		})(w, r)
	})
	mux.HandleFunc("POST /api/webhooks/dead-letters/replay", func(w http.ResponseWriter, r *http.Request) {
		var req replayRequest
		if err := decodeBody(r, &req); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		n, err := d.Replay(r.Context(), req.Endpoint, req.IDs)
		if err != nil {
			fail(w, "replay dead letters", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
	})
	mux.HandleFunc("GET /api/webhooks/suppressed", func(w http.ResponseWriter, r *http.Request) {
		limit, ok := limitParam(w, r)
		if !ok {
			return
		}
		list("list suppressed notifications", func(r *http.Request) (any, error) {
			return d.Suppressed(r.Context(), limit)
		})(w, r)
	})
}

// decodeBody reads a JSON request body of at most 64 KiB into v; unknown
// fields are an error, so a misspelt field is not silently ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v", err)
	}
	return nil
}
