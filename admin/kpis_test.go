package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestKPIs(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	get := func(h http.Handler) (int, string, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/kpis", nil))
		return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
	}
	if code, _, _ := get(API{Log: quiet}.Handler()); code != http.StatusNotFound {
		t.Errorf("without KPIs: %d, want 404", code)
	}
	report := map[string]any{"customers": 3, "periods": map[string]any{"month": map[string]any{"nps": nil}}}
	code, ct, body := get(API{Log: quiet, KPIs: func(context.Context) (any, error) { return report, nil }}.Handler())
	if code != 200 || ct != "application/json" || strings.TrimSpace(body) != `{"customers":3,"periods":{"month":{"nps":null}}}` {
		t.Errorf("GET /api/kpis: %d %s %q", code, ct, body)
	}
	code, _, body = get(API{Log: quiet, KPIs: func(context.Context) (any, error) { return nil, errors.New("redis down") }}.Handler())
	if code != 500 || !strings.Contains(body, "could not compute the KPIs") {
		t.Errorf("failing KPIs: %d %q", code, body)
	}
	rec := httptest.NewRecorder()
	API{Log: quiet, KPIs: func(context.Context) (any, error) { return report, nil }}.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/api/kpis", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/kpis: %d, want 405", rec.Code)
	}
}
