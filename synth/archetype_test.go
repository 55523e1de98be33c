package synth

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/event"
)

func TestArchetypeMix(t *testing.T) {
	for _, n := range []int{10, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cfg := year(n, 11)
			count := map[Archetype]int{}
			for i := range n {
				a := ArchetypeOf(cfg, i)
				count[a]++
				if other := ArchetypeOf(year(n*3, 11), i); other != a {
					t.Fatalf("customer %d is %s in a population of %d and %s in one of %d", i, a, n, other, n*3)
				}
			}
			want := map[Archetype]int{Regular: 30, Loyal: 20}
			for _, a := range Archetypes() {
				w := want[a]
				if w == 0 {
					w = 10
				}
				if count[a] != w*n/100 {
					t.Errorf("%d %s customers of %d, want %d %%", count[a], a, n, w)
				}
			}
		})
	}
	if ArchetypeOf(year(10, 1), -1) != Regular {
		t.Error("a negative index is not regular")
	}
}

// history is one customer's decoded events in event-time order.
type history struct {
	i      int
	arch   Archetype
	events []event.Event
}

func (h *history) of(typ event.Type) []event.Event {
	var out []event.Event
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// openings returns when the customer opened tickets, in order.
func (h *history) openings() []time.Time {
	var out []time.Time
	for _, e := range h.of(event.SupportTicket) {
		if e.Status == event.Opened {
			out = append(out, e.OccurredAt)
		}
	}
	return out
}

// maxIn30Days is the most ticket openings in any 30-day window.
func maxIn30Days(opened []time.Time) int {
	best := 0
	for i := range opened {
		n := 0
		for j := i; j < len(opened) && opened[j].Sub(opened[i]) < 30*day; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

func byCustomer(t *testing.T, cfg Config) []*history {
	t.Helper()
	hs := make([]*history, cfg.Customers)
	for i := range hs {
		hs[i] = &history{i: i, arch: ArchetypeOf(cfg, i)}
	}
	for _, m := range Generate(cfg) {
		e, err := decode(m, cfg.End)
		if err != nil {
			t.Fatalf("%s: %v", m.Value, err)
		}
		var i int
		if _, err := fmt.Sscanf(e.CustomerID, "cust-%d", &i); err != nil || i >= len(hs) {
			t.Fatalf("customer id %q", e.CustomerID)
		}
		hs[i].events = append(hs[i].events, e)
	}
	for _, h := range hs {
		slices.SortStableFunc(h.events, func(a, b event.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
	}
	return hs
}

// TestArchetypeStories checks, on the generated events, the pattern that
// makes each archetype trip its rule (contract §3) inside the window, and
// that the others do not show it.
func TestArchetypeStories(t *testing.T) {
	cfg := year(500, 3)
	hs := byCustomer(t, cfg)
	for _, h := range hs {
		if len(h.events) == 0 || h.events[0].Type != event.Customer || h.events[0].SignedUpAt.IsZero() || h.events[0].SignedUpAt.After(h.events[0].OccurredAt) {
			t.Fatalf("customer %d does not start with a profile that has signed_up_at", h.i)
		}
	}
	checks := map[Archetype]func(h *history) error{
		VIPLapsing: func(h *history) error {
			if h.events[0].Tier != "vip" {
				return fmt.Errorf("first profile has tier %q", h.events[0].Tier)
			}
			buys := h.of(event.Purchase)
			if len(buys) < 3 {
				return fmt.Errorf("%d purchases", len(buys))
			}
			if last := buys[len(buys)-1].OccurredAt; cfg.End.Sub(last) < 200*day {
				return fmt.Errorf("last purchase %s, %d days before the end", last, cfg.End.Sub(last)/day)
			}
			return nil
		},
		FadingUsage: func(h *history) error {
			daily := map[int64]float64{}
			for _, e := range h.of(event.Usage) {
				daily[e.OccurredAt.Unix()/86400] += e.Value
			}
			for d := cfg.Start.Unix() / 86400; d < cfg.End.Unix()/86400-14; d++ {
				before, after := 0.0, 0.0
				heavy := true
				for k := d - 28; k < d; k++ {
					before += daily[k]
					heavy = heavy && daily[k] >= 2
				}
				for k := d; k < d+14; k++ {
					after += daily[k]
				}
				if heavy && after/14 < 0.5*before/28 {
					return nil
				}
			}
			return fmt.Errorf("no four weeks of ≥ 2 sessions a day followed by two weeks under half of it")
		},
		TicketStorm: func(h *history) error {
			if n := maxIn30Days(h.openings()); n < 3 {
				return fmt.Errorf("at most %d tickets opened within 30 days", n)
			}
			done := map[string]time.Time{}
			for _, e := range h.of(event.SupportTicket) {
				if e.Status == event.Solved || e.Status == event.Closed {
					done[e.TicketID] = e.OccurredAt
				}
			}
			for _, e := range h.of(event.SupportTicket) {
				if e.Status == event.Opened && e.OccurredAt.Before(cfg.End.Add(-14*day)) && !done[e.TicketID].After(e.OccurredAt) {
					return fmt.Errorf("ticket %s opened %s never solved or closed", e.TicketID, e.OccurredAt)
				}
			}
			return nil
		},
		Detractor: func(h *history) error {
			for _, e := range h.of(event.Feedback) {
				if e.Kind == event.NPS && e.Score <= 6 {
					return nil
				}
			}
			return fmt.Errorf("no NPS answer of 0–6")
		},
		StalledSignup: func(h *history) error {
			for _, e := range h.events {
				if e.Type != event.Customer {
					return fmt.Errorf("a %s event", e.Type)
				}
			}
			if signup := h.events[0].SignedUpAt; cfg.End.Sub(signup) < 14*day {
				return fmt.Errorf("signed up %s, less than 14 days before the end", signup)
			}
			return nil
		},
	}
	// Patterns the others must not show, so that each rule points at its
	// archetype.
	notOthers := map[string]func(h *history) error{
		"ticket-surge": func(h *history) error {
			if n := maxIn30Days(h.openings()); n >= 3 {
				return fmt.Errorf("%d tickets opened within 30 days", n)
			}
			return nil
		},
		"nps-detractor": func(h *history) error {
			for _, e := range h.of(event.Feedback) {
				if e.Kind == event.NPS && e.Score <= 6 {
					return fmt.Errorf("NPS %d", e.Score)
				}
			}
			return nil
		},
		"onboarding-stalled": func(h *history) error {
			// a purchase or usage within 14 days of signing up
			first := h.events[0].OccurredAt
			for _, e := range h.events {
				if (e.Type == event.Usage || e.Type == event.Purchase) && e.OccurredAt.Sub(first) < 14*day {
					return nil
				}
			}
			return fmt.Errorf("no purchase or usage within 14 days of the first profile")
		},
	}
	owner := map[string]Archetype{"ticket-surge": TicketStorm, "nps-detractor": Detractor, "onboarding-stalled": StalledSignup}

	seen := map[Archetype]int{}
	for _, h := range hs {
		seen[h.arch]++
		if check := checks[h.arch]; check != nil {
			if err := check(h); err != nil {
				t.Errorf("%s customer %d: %v", h.arch, h.i, err)
			}
		}
		for rule, check := range notOthers {
			if h.arch == owner[rule] || cfg.End.Sub(h.events[0].OccurredAt) < 14*day {
				continue
			}
			if err := check(h); err != nil {
				t.Errorf("%s customer %d would trip %s: %v", h.arch, h.i, rule, err)
			}
		}
	}
	for _, a := range Archetypes() {
		if seen[a] == 0 {
			t.Errorf("no %s customer among %d", a, cfg.Customers)
		}
	}
}

// TestLoyalAndVIPs: loyal customers reach purchase milestones, and VIPs who
// keep buying never go 180 days without a purchase.
func TestLoyalAndVIPs(t *testing.T) {
	cfg := year(500, 5)
	ten, twentyFive, loyal, keepBuying := 0, 0, 0, 0
	promoted := 0
	for _, h := range byCustomer(t, cfg) {
		tier := ""
		for _, e := range h.of(event.Customer) {
			if e.HasTier {
				tier = e.Tier
			}
		}
		buys := h.of(event.Purchase)
		if h.arch == Loyal {
			loyal++
			if len(buys) >= 10 {
				ten++
			}
			if len(buys) >= 25 {
				twentyFive++
			}
			if h.events[0].Tier != tier {
				promoted++
			}
		}
		if tier != "vip" || h.arch == VIPLapsing {
			continue
		}
		keepBuying++
		last := h.events[0].OccurredAt
		for _, e := range append(buys, event.Event{OccurredAt: cfg.End}) {
			if e.OccurredAt.Sub(last) >= 180*day {
				t.Errorf("%s customer %d, a VIP, bought nothing from %s to %s", h.arch, h.i, last, e.OccurredAt)
			}
			last = e.OccurredAt
		}
	}
	t.Logf("%d loyal: %d reach 10 purchases, %d reach 25, %d promoted; %d VIPs keep buying", loyal, ten, twentyFive, promoted, keepBuying)
	if ten < loyal/2 || twentyFive == 0 || promoted == 0 || keepBuying == 0 {
		t.Error("loyal customers do not reach their milestones, get promoted, or no VIP keeps buying")
	}
}

// TestDetractorsTurning: some detractors answer a later survey as promoters.
func TestDetractorsTurning(t *testing.T) {
	turned := 0
	for _, h := range byCustomer(t, year(300, 8)) {
		if h.arch != Detractor {
			continue
		}
		low := false
		for _, e := range h.of(event.Feedback) {
			low = low || (e.Kind == event.NPS && e.Score <= 6)
			if low && e.Kind == event.NPS && e.Score >= 9 {
				turned++
				break
			}
		}
	}
	if turned == 0 {
		t.Error("no detractor turned promoter")
	}
}
