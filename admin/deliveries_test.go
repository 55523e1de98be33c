package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/webhook"
)

type fakeDeliveries struct {
	silences []webhook.Silence
	replayed []string
}

func (f *fakeDeliveries) Silences(_ context.Context, all bool) ([]webhook.Silence, error) {
	return f.silences, nil
}

func (f *fakeDeliveries) AddSilence(_ context.Context, s webhook.Silence) (webhook.Silence, error) {
	if err := s.Validate(time.Now()); err != nil {
		return s, err
	}
	s.ID = fmt.Sprint("s", len(f.silences)+1)
	f.silences = append(f.silences, s)
	return s, nil
}

func (f *fakeDeliveries) ExpireSilence(_ context.Context, id string) (webhook.Silence, error) {
	for i := range f.silences {
		if f.silences[i].ID == id {
			f.silences[i].Until = time.Now()
			return f.silences[i], nil
		}
	}
	return webhook.Silence{}, fmt.Errorf("silence %s: %w", id, webhook.ErrNotFound)
}

func (f *fakeDeliveries) Endpoints(context.Context) (any, error) {
	return []map[string]any{{"name": "crm", "pending": 2}}, nil
}

func (f *fakeDeliveries) Enable(_ context.Context, name string) error {
	if name != "crm" {
		return fmt.Errorf("endpoint %s: %w", name, webhook.ErrNotFound)
	}
	return nil
}

func (f *fakeDeliveries) DeadLetters(_ context.Context, ep string, limit int) (any, error) {
	return []map[string]any{{"endpoint": "crm", "event_id": "a-firing", "limit": limit}}, nil
}

func (f *fakeDeliveries) Replay(_ context.Context, ep string, ids []string) (int, error) {
	f.replayed = append(f.replayed, ep+":"+strings.Join(ids, ","))
	return len(ids), nil
}

func (f *fakeDeliveries) Suppressed(context.Context, int) (any, error) {
	return []map[string]string{{"reason": "cap-rule"}}, nil
}

func TestDeliveryRoutes(t *testing.T) {
	f := &fakeDeliveries{}
	srv := httptest.NewServer(API{Deliveries: f, Token: testToken}.Handler())
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/silences", `{"customer_id":"c1","until":"` + until + `","comment":"do not contact"}`, 201, `"id":"s1"`},
		{"POST", "/api/silences", `{"rule":"ticket-surge","duration":"72h","comment":"save play running"}`, 201, `"rule":"ticket-surge"`},
		{"POST", "/api/silences", `{"customer_id":"c1","duration":"72h"}`, 400, "comment is required"},
		{"POST", "/api/silences", `{"duration":"72h","comment":"x"}`, 400, "customer_id or rule"},
		{"POST", "/api/silences", `{"customer":"c1","duration":"72h","comment":"x"}`, 400, "unknown field"},
		{"POST", "/api/silences", `{"customer_id":"c1","duration":"soon","comment":"x"}`, 400, "duration"},
		{"GET", "/api/silences", "", 200, `"comment":"save play running"`},
		{"DELETE", "/api/silences/s1", "", 200, `"id":"s1"`},
		{"DELETE", "/api/silences/nope", "", 404, "not found"},
		{"GET", "/api/webhooks", "", 200, `"pending":2`},
		{"POST", "/api/webhooks/crm/enable", "", 200, `"enabled":"crm"`},
		{"POST", "/api/webhooks/other/enable", "", 404, "not found"},
		{"GET", "/api/webhooks/dead-letters?endpoint=crm&limit=5", "", 200, `"limit":5`},
		{"GET", "/api/webhooks/dead-letters?limit=0", "", 400, "limit"},
		{"POST", "/api/webhooks/dead-letters/replay", `{"endpoint":"crm","ids":["a-firing"]}`, 200, `{"replayed":1}`},
		{"GET", "/api/webhooks/suppressed", "", 200, `"reason":"cap-rule"`},
		{"GET", "/api/customers/c1", "", 404, ""}, // no Source: not served
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s: %d %q, want %d containing %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.want)
		}
	}
	if len(f.silences) != 2 || f.silences[0].Until.After(time.Now()) {
		t.Errorf("silences %+v: want two, the first expired", f.silences)
	}
	if len(f.replayed) != 1 || f.replayed[0] != "crm:a-firing" {
		t.Errorf("replayed %v", f.replayed)
	}
}
