package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fake struct {
	ready  error
	status string
}

func (f *fake) Ready(context.Context) error { return f.ready }
func (f *fake) Customer(_ context.Context, id string) ([]byte, error) {
	if id == "known" {
		return []byte(`{"customer_id":"known"}`), nil
	}
	return nil, nil
}
func (f *fake) Alerts(_ context.Context, status string, limit int) ([]json.RawMessage, error) {
	f.status = status
	return []json.RawMessage{json.RawMessage(`{"alert_id":"a"}`)}, nil
}

func TestHandler(t *testing.T) {
	f := &fake{}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("churnwatch_up 1\n")) })
	srv := httptest.NewServer(API{Ready: f.Ready, Source: f, Metrics: metrics, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Token: testToken}.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, "ok"},
		{"/metrics", 200, "churnwatch_up 1"},
		{"/readyz", 200, "ready"},
		{"/api/customers/known", 200, `"customer_id":"known"`},
		{"/api/customers/nobody", 404, "unknown customer"},
		{"/api/alerts?status=firing", 200, `[{"alert_id":"a"}]`},
		{"/api/alerts?status=open", 400, "status must be"},
		{"/api/alerts?limit=0", 400, "limit"},
	}
	for _, tt := range tests {
		code, body := get(tt.path)
		if code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s: %d %q, want %d containing %q", tt.path, code, body, tt.code, tt.body)
		}
	}
	f.ready = errors.New("consumer groups not joined yet")
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not joined") {
		t.Errorf("readyz when not ready: %d %q", code, body)
	}
}
