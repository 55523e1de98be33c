package synth

import (
	"bytes"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/event"
)

var end = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// year is a population with a year of history ending at end.
func year(customers int, seed int64) Config {
	return Config{Customers: customers, Seed: seed, Start: end.Add(-365 * day), End: end}
}

var topicType = map[string]event.Type{
	TopicPurchases: event.Purchase, TopicTickets: event.SupportTicket, TopicUsage: event.Usage,
	TopicCustomers: event.Customer, TopicFeedback: event.Feedback,
}

// decode validates m as the processor does, at wall clock now.
func decode(m Message, now time.Time) (event.Event, error) {
	return event.Decode(m.Value, topicType[m.Topic], now)
}

func TestGenerateDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"plain", year(300, 1)},
		{"noisy", Config{Customers: 300, Seed: 7, Start: end.Add(-200 * day), End: end, BadEvery: 50, OtherKeys: 0.2}},
		{"one customer", year(1, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := Generate(tc.cfg), Generate(tc.cfg)
			if len(a) == 0 || len(a) != len(b) {
				t.Fatalf("two runs gave %d and %d messages", len(a), len(b))
			}
			for i := range a {
				x, y := a[i], b[i]
				if x.Topic != y.Topic || !bytes.Equal(x.Value, y.Value) || !x.At.Equal(y.At) ||
					!bytes.Equal(x.Key, y.Key) || (x.Key == nil) != (y.Key == nil) {
					t.Fatalf("message %d differs:\n%s %q %s\n%s %q %s", i, x.Topic, x.Key, x.Value, y.Topic, y.Key, y.Value)
				}
			}
			other := tc.cfg
			other.Seed++
			c := Generate(other)
			if len(c) == len(a) && bytes.Equal(c[len(c)/2].Value, a[len(a)/2].Value) {
				t.Error("another seed gave the same history")
			}
		})
	}
}

// TestGenerateAnyThreads: the output does not depend on how many threads
// generate it.
func TestGenerateAnyThreads(t *testing.T) {
	cfg := year(1200, 9)
	cfg.BadEvery, cfg.OtherKeys = 300, 0.1
	prev := runtime.GOMAXPROCS(1)
	one := Generate(cfg)
	runtime.GOMAXPROCS(max(prev, 4))
	many := Generate(cfg)
	runtime.GOMAXPROCS(prev)
	if len(one) != len(many) {
		t.Fatalf("%d messages on one thread, %d on several", len(one), len(many))
	}
	for i := range one {
		if !bytes.Equal(one[i].Value, many[i].Value) || !bytes.Equal(one[i].Key, many[i].Key) {
			t.Fatalf("message %d differs:\n%s\n%s", i, one[i].Value, many[i].Value)
		}
	}
}

func TestGenerateValidSortedInWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"year", year(400, 2)},
		{"month", Config{Customers: 200, Seed: 2, Start: end.Add(-30 * day), End: end}},
		{"day", Config{Customers: 50, Seed: 2, Start: end.Add(-day), End: end}},
		{"fractional bounds", Config{Customers: 100, Seed: 4, Start: end.Add(-90*day + 300*time.Millisecond), End: end.Add(-700 * time.Millisecond)}},
		{"only End", Config{Customers: 100, Seed: 5, End: end}},
		{"other zone", Config{Customers: 100, Seed: 6, Start: end.Add(-60 * day).In(time.FixedZone("X", 3600*5)), End: end.In(time.FixedZone("Y", -3600*7))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := Generate(tc.cfg)
			if len(msgs) < tc.cfg.Customers {
				t.Fatalf("%d messages for %d customers", len(msgs), tc.cfg.Customers)
			}
			start, stop := tc.cfg.Start, tc.cfg.End
			if start.IsZero() {
				start = stop.Add(-365 * day)
			}
			if !slices.IsSortedFunc(msgs, func(a, b Message) int { return a.At.Compare(b.At) }) {
				t.Error("not sorted by At")
			}
			ids := make(map[string]bool, len(msgs))
			for _, m := range msgs {
				e, err := decode(m, stop)
				if err != nil {
					t.Fatalf("%s %s: %v", m.Topic, m.Value, err)
				}
				if !e.OccurredAt.Equal(m.At) {
					t.Errorf("At %s, occurred_at %s", m.At, e.OccurredAt)
				}
				if e.OccurredAt.Before(start) || e.OccurredAt.After(stop) {
					t.Errorf("occurred_at %s outside [%s, %s]", e.OccurredAt, start, stop)
				}
				if ids[e.ID] {
					t.Errorf("event id %s twice", e.ID)
				}
				ids[e.ID] = true
				if string(m.Key) != e.CustomerID {
					t.Errorf("key %q, customer %s, with OtherKeys 0", m.Key, e.CustomerID)
				}
			}
		})
	}
}

func TestGenerateNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no customers", year(0, 1)},
		{"negative customers", year(-5, 1)},
		{"no window", Config{Customers: 10}},
		{"End before Start", Config{Customers: 10, Start: end, End: end.Add(-time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msgs := Generate(tc.cfg); len(msgs) != 0 {
				t.Errorf("%d messages, want none", len(msgs))
			}
		})
	}
}

// TestGenerateSize keeps a year of 2,000 customers at a modest size: the
// demo writes it to the broker before anything else happens.
func TestGenerateSize(t *testing.T) {
	msgs := Generate(year(2000, 1))
	byTopic := map[string]int{}
	size := 0
	for _, m := range msgs {
		byTopic[m.Topic]++
		size += len(m.Value)
	}
	t.Logf("%d messages, %d MB, by topic %v", len(msgs), size>>20, byTopic)
	if len(msgs) < 100_000 || len(msgs) > 300_000 {
		t.Errorf("%d messages, want 100k–300k", len(msgs))
	}
	for _, topic := range Topics() {
		if byTopic[topic] < 1000 {
			t.Errorf("only %d messages on %s", byTopic[topic], topic)
		}
	}
}

func TestCustomerID(t *testing.T) {
	for i, want := range map[int]string{0: "cust-000000", 42: "cust-000042", 1234567: "cust-1234567"} {
		if got := CustomerID(i); got != want {
			t.Errorf("CustomerID(%d) = %s, want %s", i, got, want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := year(2000, 1)
	n := 0
	for b.Loop() {
		n = len(Generate(cfg))
	}
	b.ReportMetric(float64(n), "msgs/op")
}
