package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/event"
)

var (
	end = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cfg = Config{Customers: 400, Seed: 7, Start: end.Add(-365 * day), End: end}
)

var topicType = map[string]event.Type{TopicPurchases: event.Purchase, TopicTickets: event.SupportTicket,
	TopicUsage: event.Usage, TopicCustomers: event.Customer, TopicFeedback: event.Feedback}

func TestDeterministicSortedValid(t *testing.T) {
	a, b := Generate(cfg), Generate(cfg)
	if len(a) != len(b) {
		t.Fatalf("two runs: %d and %d messages", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Value, b[i].Value) || !a[i].At.Equal(b[i].At) {
			t.Fatalf("message %d differs between runs", i)
		}
	}
	if !sort.SliceIsSorted(a, func(i, j int) bool { return a[i].At.Before(a[j].At) }) {
		t.Fatal("not sorted by At")
	}
	ids := map[string]bool{}
	for _, m := range a {
		e, err := event.Decode(m.Value, topicType[m.Topic], end)
		if err != nil {
			t.Fatalf("invalid %s message %s: %v", m.Topic, m.Value, err)
		}
		if ids[e.ID] {
			t.Fatalf("duplicate id %s without noise", e.ID)
		}
		ids[e.ID] = true
		if e.OccurredAt.Before(cfg.Start) || e.OccurredAt.After(cfg.End) {
			t.Fatalf("occurred_at %s outside the window", e.OccurredAt)
		}
	}
	t.Logf("%d messages for %d customers", len(a), cfg.Customers)
}

func TestArchetypePatterns(t *testing.T) {
	byCustomer := map[string][]event.Event{}
	for _, m := range Generate(cfg) {
		e, _ := event.Decode(m.Value, topicType[m.Topic], end)
		byCustomer[e.CustomerID] = append(byCustomer[e.CustomerID], e)
	}
	seen := map[Archetype]int{}
	for i := range cfg.Customers {
		a := ArchetypeOf(cfg, i)
		seen[a]++
		evs := byCustomer[CustomerID(i)]
		var purchases []time.Time
		var opened []time.Time
		for _, e := range evs {
			switch {
			case e.Type == event.Purchase:
				purchases = append(purchases, e.OccurredAt)
			case e.Type == event.SupportTicket && e.Status == event.Opened:
				opened = append(opened, e.OccurredAt)
			}
		}
		sort.Slice(opened, func(i, j int) bool { return opened[i].Before(opened[j]) })
		switch a {
		case VIPLapsing:
			if len(purchases) < 3 || end.Sub(purchases[len(purchases)-1]) < 200*day {
				t.Errorf("%s: %d purchases, last %s: want ≥ 3 and ≥ 200 days before the end", CustomerID(i), len(purchases), purchases[len(purchases)-1])
			}
		case TicketStorm:
			ok := false
			for k := 2; k < len(opened); k++ {
				if opened[k].Sub(opened[k-2]) < 30*day {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: no 3 openings within 30 days", CustomerID(i))
			}
		case StalledSignup:
			if len(purchases) != 0 {
				t.Errorf("%s: a stalled signup bought", CustomerID(i))
			}
		}
	}
	for _, m := range mix {
		if seen[m.a] == 0 {
			t.Errorf("no %s customer among %d", m.a, cfg.Customers)
		}
	}
}

func TestNoise(t *testing.T) {
	c := cfg
	c.BadEvery, c.OtherKeys = 100, 0.1
	msgs := Generate(c)
	bad, other := 0, 0
	for _, m := range msgs {
		if _, err := event.Decode(m.Value, topicType[m.Topic], end); err != nil {
			bad++
		}
		var v map[string]any
		if json.Unmarshal(m.Value, &v) == nil && v["customer_id"] != nil && string(m.Key) != v["customer_id"] {
			other++
		}
	}
	if bad == 0 || bad > len(msgs)/50 {
		t.Errorf("%d bad messages of %d, want about 1 in 100", bad, len(msgs))
	}
	if other == 0 {
		t.Error("no message keyed by something else than the customer id")
	}
}

func TestLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	n := 0
	err := Live(ctx, cfg, 200, time.Now, func(m Message) error {
		if _, err := event.Decode(m.Value, topicType[m.Topic], time.Now()); err != nil {
			t.Errorf("live message invalid: %v", err)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 200/s for 0.5 s, of which quiet archetypes send nothing.
	if n < 20 || n > 150 {
		t.Errorf("%d live events in 0.5 s at 200/s", n)
	}
}

func BenchmarkGenerate(b *testing.B) {
	c := Config{Customers: 2000, Seed: 1, Start: end.Add(-365 * day), End: end}
	for b.Loop() {
		Generate(c)
	}
}
