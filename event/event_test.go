package event

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name  string
		topic Type
		in    string
		want  Event
	}{
		{"purchase", Purchase, `{"id":"e1","customer_id":"c1","occurred_at":"2026-01-02T03:04:05.123456789+01:00","amount":12.5,"currency":"EUR","order_id":"o1","extra":{"x":[1,2]}}`,
			Event{ID: "e1", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 2, 4, 5, 123456000, time.UTC), Type: Purchase, Amount: 12.5, Currency: "EUR", OrderID: "o1"}},
		{"ticket defaults priority", SupportTicket, `{"id":"e2","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","ticket_id":"t1","status":"opened","csat":4}`,
			Event{ID: "e2", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: SupportTicket, TicketID: "t1", Status: Opened, Priority: Normal, CSAT: 4}},
		{"usage defaults", Usage, `{"id":"e3","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z"}`,
			Event{ID: "e3", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Usage, Metric: "sessions", Value: 1}},
		{"customer profile", Customer, `{"id":"e4","customer_id":"c {1}: x","occurred_at":"2026-01-02T00:00:00Z","tier":"vip","signed_up_at":"2025-01-01T00:00:00Z","attributes":{"plan":"pro"}}`,
			Event{ID: "e4", CustomerID: "c {1}: x", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Customer, Tier: "vip", HasTier: true, SignedUpAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Attributes: map[string]string{"plan": "pro"}}},
		{"customer deleted", Customer, `{"id":"e5","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","deleted":true}`,
			Event{ID: "e5", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Customer, Deleted: true}},
		{"feedback", Feedback, `{"id":"e6","customer_id":"c1","occurred_at":"1970-01-01T00:00:00Z","kind":"nps","score":0}`,
			Event{ID: "e6", CustomerID: "c1", OccurredAt: time.Unix(0, 0).UTC(), Type: Feedback, Kind: NPS, Score: 0}},
		{"type overrides topic", Usage, `{"id":"e7","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","type":"purchase","amount":0}`,
			Event{ID: "e7", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Purchase}},
		{"future within an hour", Usage, `{"id":"e8","customer_id":"c1","occurred_at":"2026-11-25T12:59:00Z"}`,
			Event{ID: "e8", CustomerID: "c1", OccurredAt: time.Date(2026, 11, 25, 12, 59, 0, 0, time.UTC), Type: Usage, Metric: "sessions", Value: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in), tt.topic, now)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			back, err := DecodeBinary(got.AppendBinary(nil))
			if err != nil {
				t.Fatalf("DecodeBinary: %v", err)
			}
			if !reflect.DeepEqual(back, got) {
				t.Fatalf("binary round trip: got %+v want %+v", back, got)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	tests := []struct {
		name, in, reason string
		topic            Type
	}{
		{"empty", ``, "empty message", Usage},
		{"not json", `hello`, "invalid JSON", Usage},
		{"invalid utf8", "{\"id\":\"\xff\"}", "not valid UTF-8", Usage},
		{"deep", `{"id":"a","x":` + deep + `}`, "nested deeper", Usage},
		{"too large", `{"id":"` + strings.Repeat("a", MaxMessageBytes) + `"}`, "exceeds the limit", Usage},
		{"missing id", `{"customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "missing required field id", Usage},
		{"empty customer", `{"id":"a","customer_id":"","occurred_at":"2026-01-01T00:00:00Z"}`, "customer_id must be 1–200", Usage},
		{"long id", `{"id":"` + strings.Repeat("é", 201) + `","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "id must be 1–200", Usage},
		{"control chars", `{"id":"a\u0001","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "control characters", Usage},
		{"id wrong type", `{"id":5,"customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "must be string", Usage},
		{"bad time", `{"id":"a","customer_id":"c","occurred_at":"yesterday"}`, "not an RFC 3339 time", Usage},
		{"far future", `{"id":"a","customer_id":"c","occurred_at":"9999-01-01T00:00:00Z"}`, "more than 1h0m0s after", Usage},
		{"unknown type", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","type":"refund"}`, "unknown type", Usage},
		{"no type", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "no default type", Unknown},
		{"missing amount", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "missing required field amount", Purchase},
		{"negative amount", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":-1}`, "out of range", Purchase},
		{"huge number", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":1e400}`, "invalid JSON", Purchase},
		{"amount string", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":"5"}`, "amount must be float64", Purchase},
		{"bad currency", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":1,"currency":"eur"}`, "ISO 4217", Purchase},
		{"bad status", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","ticket_id":"t","status":"open"}`, "status \"open\"", SupportTicket},
		{"missing ticket id", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","status":"opened"}`, "ticket_id", SupportTicket},
		{"bad priority", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","ticket_id":"t","status":"opened","priority":"p1"}`, "priority", SupportTicket},
		{"csat range", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","ticket_id":"t","status":"opened","csat":6}`, "csat 6", SupportTicket},
		{"negative usage", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","value":-2}`, "value -2", Usage},
		{"attribute not string", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","attributes":{"n":1}}`, "invalid JSON", Customer},
		{"bad signup", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","signed_up_at":"2026"}`, "signed_up_at", Customer},
		{"nps range", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","kind":"nps","score":11}`, "score 11", Feedback},
		{"nps fraction", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","kind":"nps","score":6.5}`, "not an integer", Feedback},
		{"ces zero", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","kind":"ces","score":0}`, "score 0", Feedback},
		{"missing kind", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","score":3}`, "kind", Feedback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in), tt.topic, now)
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("want *Error, got %v", err)
			}
			if !strings.Contains(ve.Reason, tt.reason) {
				t.Fatalf("reason %q does not contain %q", ve.Reason, tt.reason)
			}
		})
	}
}

func TestDecodeBinaryCorrupt(t *testing.T) {
	e := Event{ID: "e", CustomerID: "c", OccurredAt: now, Type: Customer, Attributes: map[string]string{"a": "b"}}
	b := e.AppendBinary(nil)
	for i := range len(b) {
		if _, err := DecodeBinary(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := DecodeBinary(append(b, 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"e1","customer_id":"c1","occurred_at":"2026-01-02T03:04:05Z","amount":12.5}`), uint8(Purchase))
	f.Add([]byte(`{"id":"e2","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","ticket_id":"t1","status":"opened","csat":4}`), uint8(SupportTicket))
	f.Add([]byte(`{"id":"e4","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","tier":"vip","attributes":{"plan":"pro"}}`), uint8(Customer))
	f.Add([]byte(`{"id":"e6","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","kind":"nps","score":3}`), uint8(Feedback))
	f.Fuzz(func(t *testing.T, data []byte, typ uint8) {
		e, err := Decode(data, Type(typ%6), now)
		if err != nil {
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		back, err := DecodeBinary(e.AppendBinary(nil))
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("binary round trip of %+v: %+v, %v", e, back, err)
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	e := Event{ID: "e", CustomerID: "c", OccurredAt: now, Type: Customer, Tier: "vip", HasTier: true, Attributes: map[string]string{"a": "b"}}
	f.Add(e.AppendBinary(nil))
	e = Event{ID: "e", CustomerID: "c", OccurredAt: now, Type: Purchase, Amount: 3.25}
	f.Add(e.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeBinary(data)
		if err != nil {
			return
		}
		again, err := DecodeBinary(e.AppendBinary(nil))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encode of %+v: %+v, %v", e, again, err)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	msg := []byte(`{"id":"evt-000123456","customer_id":"cust-0004567","occurred_at":"2026-01-02T03:04:05.123Z","type":"purchase","amount":129.90,"currency":"EUR","order_id":"ord-99812"}`)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Decode(msg, Purchase, now); err != nil {
			b.Fatal(err)
		}
	}
}
