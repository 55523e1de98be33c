package webhook

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDeliver(t *testing.T) {
	key, _ := ParseSecret(vectorSecret)
	body := []byte(`{"specversion":"1.0","id":"a-firing"}`)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    Outcome
		after   time.Duration
	}{
		{"2xx", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			err := Verify(r.Header.Get(HeaderID), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), b, time.Now(), time.Minute, key)
			if err != nil || r.Header.Get(HeaderID) != "a-firing" || r.Header.Get("Content-Type") != ContentType {
				w.WriteHeader(400)
				return
			}
			w.WriteHeader(204)
		}, Delivered, 0},
		{"429 with Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		}, Retry, 2 * time.Minute},
		{"503 with a date", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(503)
		}, Retry, 59 * time.Minute},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, Retry, 0},
		{"410 disables", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }, Disable, 0},
		{"400 dead-letters", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }, DeadLetter, 0},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", 302) }, DeadLetter, 0},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) }, Retry, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			ep := &Endpoint{Name: "crm", URL: srv.URL, Secrets: []Secret{key}, Timeout: 100 * time.Millisecond}
			r := (&Client{}).Deliver(context.Background(), ep, Message{ID: "a-firing", Body: body})
			if r.Outcome != tt.want {
				t.Fatalf("outcome %s (status %d, %v), want %s", r.Outcome, r.Status, r.Err, tt.want)
			}
			if r.RetryAfter < tt.after || r.RetryAfter > tt.after+2*time.Minute {
				t.Fatalf("retry after %s, want about %s", r.RetryAfter, tt.after)
			}
		})
	}
}

func TestNextDelay(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var total time.Duration
		for n := range Attempts {
			d, ok := NextDelay(n, 0, r)
			if !ok {
				t.Fatalf("attempt %d refused", n)
			}
			total += d
		}
		if total < 24*time.Hour {
			t.Fatalf("schedule spans %s, want at least 24 hours", total)
		}
	}
	if _, ok := NextDelay(Attempts, 0, r); ok {
		t.Error("a delay past the schedule")
	}
	if d, _ := NextDelay(1, time.Hour, r); d != time.Hour {
		t.Errorf("Retry-After not honoured: %s", d)
	}
}
