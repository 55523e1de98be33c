package event

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
		// Names match exactly: a case variant is an unknown field, ignored.
		{"case variants ignored", Feedback, `{"id":"e9","customer_id":"c1","CUSTOMER_ID":"c2","Customer_id":"c3","occurred_at":"2026-01-02T00:00:00Z","kind":"nps","\u212Aind":"ces","score":3,"Score":9}`,
			Event{ID: "e9", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Feedback, Kind: NPS, Score: 3}},
		{"escaped names", Purchase, `{"\u0069d":"e10","customer\u005fid":"c1","occurred_at":"2026-01-02T00:00:00Z","amount":1}`,
			Event{ID: "e10", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Purchase, Amount: 1}},
		{"largest amount", Purchase, `{"id":"e11","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","amount":1e15,"x":123456789012345678901234567890}`,
			Event{ID: "e11", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Purchase, Amount: 1e15}},
		{"latest signup", Customer, `{"id":"e14","customer_id":"c1","occurred_at":"2026-01-02T00:00:00Z","signed_up_at":"9999-12-31T23:59:59.999999+00:00"}`,
			Event{ID: "e14", CustomerID: "c1", OccurredAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Type: Customer, SignedUpAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)}},
		{"unknown fields of any shape", Usage, `{"id":"e12","customer_id":"a {b}: c","occurred_at":"2026-01-02T00:00:00-23:59","x":[[{"y":null}],"\u0000\ud83d\ude00",1e999]}`,
			Event{ID: "e12", CustomerID: "a {b}: c", OccurredAt: time.Date(2026, 1, 2, 23, 59, 0, 0, time.UTC), Type: Usage, Metric: "sessions", Value: 1}},
		{"the epoch", Usage, `{"id":"e13","customer_id":"c1","occurred_at":"1970-01-01T01:00:00.000001+01:00"}`,
			Event{ID: "e13", CustomerID: "c1", OccurredAt: time.Unix(0, 1000).UTC(), Type: Usage, Metric: "sessions", Value: 1}},
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
			back, err := DecodeBinary(got.AppendBinary(nil, Origin{Prev: -1}))
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
		{"array", `[{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}]`, "invalid JSON: want a JSON object, got array", Usage},
		{"string", `"{}"`, "want a JSON object, got string", Usage},
		{"whitespace", " \n\t", "invalid JSON", Usage},
		{"two objects", `{"id":"a"}{"id":"b"}`, "invalid JSON", Usage},
		{"deep array", strings.Repeat("[", 100000), "nested deeper than 32", Usage},
		{"name case", `{"id":"a","Customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "missing required field customer_id", Usage},
		{"name fold", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","\u212Aind":"nps","score":3}`, "missing required field kind", Feedback},
		{"duplicate name", `{"id":"a","customer_id":"c","customer_id":"d","occurred_at":"2026-01-01T00:00:00Z"}`, `invalid JSON: duplicate object member name "customer_id"`, Usage},
		{"duplicate escaped name", `{"id":"a","customer_id":"c","customer\u005fid":"c","occurred_at":"2026-01-01T00:00:00Z"}`, `duplicate object member name "customer_id"`, Usage},
		{"duplicate in unknown field", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","x":{"y":1,"y":1}}`, `duplicate object member name "y" within "/x"`, Usage},
		{"duplicate attribute", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","attributes":{"p":"a","p":"b"}}`, `duplicate object member name "p"`, Customer},
		{"lone surrogate", `{"id":"\ud800","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z"}`, "invalid JSON: invalid surrogate pair", Usage},
		{"raw control character", "{\"id\":\"a\u0001\",\"customer_id\":\"c\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}", "invalid JSON", Usage},
		{"escaped NUL", `{"id":"a","customer_id":"c\u0000","occurred_at":"2026-01-01T00:00:00Z"}`, "customer_id contains control characters", Usage},
		{"huge score", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","kind":"nps","score":123456789012345678901234567890}`, "score 1.2345678901234568e+29 is not an integer from 0 to 10", Feedback},
		{"huge number reason", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":1e400}`, "field amount: number 1e400 is out of range of float64", Purchase},
		{"huge amount", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":123456789012345678901234567890}`, "amount 1.2345678901234568e+29 is out of range (0 to 1e+15)", Purchase},
		{"amount overflowing a total", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":1.7e308}`, "out of range (0 to 1e+15)", Purchase},
		{"huge usage", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","value":1e16}`, "value 1e+16 is out of range (0 to 1e+15)", Usage},
		{"signup after 9999 in UTC", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","signed_up_at":"9999-12-31T23:00:00-01:00"}`, "signed_up_at 9999-12-31T23:00:00-01:00 is after 9999-12-31T23:59:59Z", Customer},
		{"negative huge", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","amount":-1e400}`, "out of range", Purchase},
		{"attribute reason", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","attributes":{"n":1}}`, "field attributes.n must be string, got number", Customer},
		{"attributes array", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","attributes":["a"]}`, "field attributes must be object, got array", Customer},
		{"deleted string", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","deleted":"yes"}`, "field deleted must be bool, got string", Customer},
		{"odd attribute name", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","attributes":{"a.b\n":[]}}`, `field attributes."a.b\n" must be string, got array`, Customer},
		{"before 1970", `{"id":"a","customer_id":"c","occurred_at":"1969-12-31T23:59:59.999999Z"}`, "occurred_at 1969-12-31T23:59:59.999999Z is before 1970-01-01T00:00:00Z", Usage},
		{"offset before 1970", `{"id":"a","customer_id":"c","occurred_at":"1970-01-01T00:30:00+01:00"}`, "is before 1970", Usage},
		{"zero time", `{"id":"a","customer_id":"c","occurred_at":"0001-01-01T00:00:00Z"}`, "is before 1970", Usage},
		{"year 0", `{"id":"a","customer_id":"c","occurred_at":"0000-01-01T00:00:00Z"}`, "is before 1970", Usage},
		{"signup before 1970", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00Z","signed_up_at":"0001-01-01T00:00:00Z"}`, "signed_up_at 0001-01-01T00:00:00Z is before 1970", Customer},
		{"year 9999", `{"id":"a","customer_id":"c","occurred_at":"9999-12-31T23:59:59.999999999+23:59"}`, "more than 1h0m0s after the current time 2026-11-25T12:00:00Z", Usage},
		{"year 10000 in UTC", `{"id":"a","customer_id":"c","occurred_at":"9999-12-31T23:59:59.999999999-23:59"}`, "is after 9999-12-31T23:59:59Z", Usage},
		{"one-digit hour", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T0:00:00Z"}`, "not an RFC 3339 time", Usage},
		{"comma fraction", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00,5Z"}`, "not an RFC 3339 time", Usage},
		{"empty fraction", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00.Z"}`, "not an RFC 3339 time", Usage},
		{"24h offset", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00+24:00"}`, "not an RFC 3339 time", Usage},
		{"offset minutes", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00+01:60"}`, "not an RFC 3339 time", Usage},
		{"no offset", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01T00:00:00"}`, "not an RFC 3339 time", Usage},
		{"space", `{"id":"a","customer_id":"c","occurred_at":"2026-01-01 00:00:00Z"}`, "not an RFC 3339 time", Usage},
		{"day 30 of February", `{"id":"a","customer_id":"c","occurred_at":"2026-02-30T00:00:00Z"}`, "not an RFC 3339 time", Usage},
		{"time not a string", `{"id":"a","customer_id":"c","occurred_at":1767225600}`, "field occurred_at must be string, got number", Usage},
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
	b := e.AppendBinary(nil, Origin{Prev: -1})
	for i := range len(b) {
		if _, err := DecodeBinary(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := DecodeBinary(append(b, 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
}

// FuzzDecode: Decode never panics, fails only with an *Error whose reason
// fits a Kafka header (valid UTF-8, bounded), and accepts only events that
// keep the contract's invariants and survive the binary round trip.
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
			if ve.Reason == "" || !utf8.ValidString(ve.Reason) || len(ve.Reason) > 1024 {
				t.Fatalf("reason %q: want 1–1024 bytes of UTF-8", ve.Reason)
			}
			return
		}
		if msg := invalid(&e); msg != "" {
			t.Fatalf("accepted %+v: %s", e, msg)
		}
		back, err := DecodeBinary(e.AppendBinary(nil, Origin{Prev: -1}))
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("binary round trip of %+v: %+v, %v", e, back, err)
		}
	})
}

// invalid says which invariant of an accepted event e breaks, or "".
func invalid(e *Event) string {
	text := func(s string, min, max int) bool {
		n := utf8.RuneCountInString(s)
		return utf8.ValidString(s) && n >= min && n <= max && !hasControl(s)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= MaxNumber }
	switch {
	case !text(e.ID, 1, MaxIDChars) || !text(e.CustomerID, 1, MaxIDChars):
		return "id or customer_id"
	case e.OccurredAt.Location() != time.UTC || e.OccurredAt.Before(MinTime) || e.OccurredAt.After(now.Add(MaxFuture)) ||
		e.OccurredAt.Nanosecond()%1000 != 0:
		return "occurred_at"
	case e.Type < Purchase || e.Type > Feedback:
		return "type"
	case e.Type == Purchase && (!finite(e.Amount) || !text(e.OrderID, 0, MaxIDChars) || e.Currency != "" && len(e.Currency) != 3):
		return "purchase"
	case e.Type == SupportTicket && (!text(e.TicketID, 1, MaxIDChars) || e.Status == 0 || e.Priority == 0 || e.CSAT < 0 || e.CSAT > 5):
		return "ticket"
	case e.Type == Usage && (!finite(e.Value) || !text(e.Metric, 1, MaxIDChars)):
		return "usage"
	case e.Type == Customer && (len(e.Attributes) > MaxAttributes || !e.SignedUpAt.IsZero() &&
		(e.SignedUpAt.Before(MinTime) || e.SignedUpAt.Year() > 9999 || e.SignedUpAt.Location() != time.UTC)):
		return "customer"
	case e.Type == Feedback && (e.Kind == 0 || float64(e.Score) < scoreRange[e.Kind][0] || float64(e.Score) > scoreRange[e.Kind][1]):
		return "feedback"
	}
	for k, v := range e.Attributes {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || k == "" || len(k) > MaxAttrKey || len(v) > MaxAttrValue {
			return "attributes"
		}
	}
	return ""
}

func FuzzDecodeBinary(f *testing.F) {
	e := Event{ID: "e", CustomerID: "c", OccurredAt: now, Type: Customer, Tier: "vip", HasTier: true, Attributes: map[string]string{"a": "b"}}
	f.Add(e.AppendBinary(nil, Origin{Prev: -1}))
	e = Event{ID: "e", CustomerID: "c", OccurredAt: now, Type: Purchase, Amount: 3.25}
	f.Add(e.AppendBinary(nil, Origin{Prev: -1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeBinary(data)
		if err != nil {
			return
		}
		again, err := DecodeBinary(e.AppendBinary(nil, Origin{Prev: -1}))
		if err != nil || !sameEvent(again, e) {
			t.Fatalf("re-encode of %+v: %+v, %v", e, again, err)
		}
	})
}

// sameEvent is reflect.DeepEqual, but a NaN amount or value (which only a
// corrupt binary form carries; Decode refuses them) equals another NaN.
func sameEvent(a, b Event) bool {
	for _, p := range [][2]*float64{{&a.Amount, &b.Amount}, {&a.Value, &b.Value}} {
		if math.IsNaN(*p[0]) && math.IsNaN(*p[1]) {
			*p[0], *p[1] = 0, 0
		}
	}
	return reflect.DeepEqual(a, b)
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

func TestPeek(t *testing.T) {
	e := Event{Type: Usage, ID: "e {1}", CustomerID: "c: ü", OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Metric: "m", Value: 2}
	o := Origin{Source: SourceKey("usage", [16]byte{1, 2}, 7), Offset: 1 << 40, Prev: 1<<40 - 1000}
	first := Origin{Source: o.Source, Offset: 5, Prev: -1}
	for _, o := range []Origin{first, o} {
		if got, id, err := Peek(e.AppendBinary(nil, o)); err != nil || id != e.CustomerID || got != o {
			t.Fatalf("Peek: %v %q %v, want %v", got, id, err, o)
		}
	}
	b := e.AppendBinary(nil, o)
	for i := range bytes.Index(b, []byte(e.CustomerID)) + len(e.CustomerID) {
		if _, _, err := Peek(b[:i]); err == nil {
			t.Fatalf("%d bytes: no error", i)
		}
	}
	// A record of version 1, from before origins: the same without them.
	v1 := append([]byte{1}, e.AppendBinary(nil, Origin{Prev: -1})[4:]...)
	if got, id, err := Peek(v1); err != nil || id != e.CustomerID || got != (Origin{Prev: -1}) {
		t.Fatalf("Peek of version 1: %v %q %v", got, id, err)
	}
	if back, err := DecodeBinary(v1); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("DecodeBinary of version 1: %+v %v", back, err)
	}
}

func TestSourceKey(t *testing.T) {
	a := SourceKey("usage", [16]byte{}, 3)
	if a>>32 != 3 || uint32(a) == 0 {
		t.Fatalf("SourceKey = %x: want partition 3 above a non-zero hash", a)
	}
	for _, b := range []uint64{SourceKey("usage", [16]byte{}, 4), SourceKey("usage", [16]byte{9}, 3), SourceKey("purchases", [16]byte{}, 3)} {
		if b == a {
			t.Fatalf("%x names two source partitions", a)
		}
	}
}
