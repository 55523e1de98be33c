package synth

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/churnwatch/churnwatch/event"
)

// TestBadShare: about one message in BadEvery is invalid, whatever the
// population size, and every invalid one is rejected with a reason.
func TestBadShare(t *testing.T) {
	for _, tc := range []struct{ customers, badEvery int }{
		{100, 50}, {400, 50}, {600, 200}, {400, 1000},
	} {
		t.Run(fmt.Sprintf("%d customers, 1 in %d", tc.customers, tc.badEvery), func(t *testing.T) {
			cfg := year(tc.customers, 21)
			cfg.BadEvery = tc.badEvery
			msgs := Generate(cfg)
			bad := 0
			for _, m := range msgs {
				if _, err := decode(m, cfg.End); err != nil {
					var ve *event.Error
					if !errors.As(err, &ve) || ve.Reason == "" {
						t.Errorf("%s: %v is not a validation error", m.Value, err)
					}
					bad++
				}
				if m.At.Before(cfg.Start) || m.At.After(cfg.End) {
					t.Errorf("At %s outside the window", m.At)
				}
			}
			share := float64(bad) * float64(tc.badEvery) / float64(len(msgs))
			t.Logf("%d bad of %d messages: %.2f × 1/%d", bad, len(msgs), share, tc.badEvery)
			if math.Abs(share-1) > 0.2 {
				t.Errorf("%d bad messages of %d, want about 1 in %d", bad, len(msgs), tc.badEvery)
			}
		})
	}
}

// TestBadVariety: the dead-letter topic sees many kinds of bad input, on
// every source topic.
func TestBadVariety(t *testing.T) {
	cfg := year(300, 22)
	cfg.BadEvery = 10
	reasons := map[string]int{}
	topics := map[string]int{}
	for _, m := range Generate(cfg) {
		_, err := decode(m, cfg.End)
		if err == nil {
			continue
		}
		topics[m.Topic]++
		reason := err.Error()
		for _, kind := range []string{"invalid JSON", "missing required field", "is out of range", "is not an integer",
			"after the current time", "is not an RFC 3339 time", "unknown type", "status", "priority", "currency", "kind",
			"must be 1–", "must be"} {
			if strings.Contains(reason, kind) {
				reason = kind
				break
			}
		}
		reasons[reason]++
	}
	t.Logf("reasons: %v", reasons)
	for _, want := range []string{"invalid JSON", "missing required field", "is out of range", "after the current time", "status", "unknown type"} {
		if reasons[want] == 0 {
			t.Errorf("no message rejected for %q", want)
		}
	}
	for _, topic := range Topics() {
		if topics[topic] == 0 {
			t.Errorf("no bad message on %s", topic)
		}
	}
}

// TestNoiseOnlyAdds: with BadEvery and OtherKeys the good events are the
// same as without (only keys change); exact re-sends and tier changes that
// arrive after newer ones come on top, and the latest tier by occurred_at
// is what it was.
func TestNoiseOnlyAdds(t *testing.T) {
	clean := year(500, 23)
	noisy := clean
	noisy.BadEvery, noisy.OtherKeys = 200, 0.3

	want := map[string]int{}
	cleanTier := map[string]event.Event{} // by occurred_at
	for _, m := range Generate(clean) {
		want[string(m.Value)]++
		if e, _ := decode(m, clean.End); e.Type == event.Customer && e.HasTier {
			if l, ok := cleanTier[e.CustomerID]; !ok || !e.OccurredAt.Before(l.OccurredAt) {
				cleanTier[e.CustomerID] = e
			}
		}
	}
	got := map[string]int{}
	seen := map[string]string{} // id → value
	dups := 0
	latestTier := map[string]event.Event{} // by occurred_at
	arrived := map[string]event.Event{}    // the last tier change read
	late := 0
	for _, m := range Generate(noisy) {
		e, err := decode(m, noisy.End)
		if err != nil {
			continue
		}
		got[string(m.Value)]++
		if v, ok := seen[e.ID]; ok {
			if v != string(m.Value) {
				t.Errorf("id %s re-used for a different event", e.ID)
			}
			dups++
		}
		seen[e.ID] = string(m.Value)
		if e.Type == event.Customer && e.HasTier {
			if prev, ok := arrived[e.CustomerID]; ok && e.OccurredAt.Before(prev.OccurredAt) && e.Tier != prev.Tier {
				late++
			}
			arrived[e.CustomerID] = e
			if l, ok := latestTier[e.CustomerID]; !ok || !e.OccurredAt.Before(l.OccurredAt) {
				latestTier[e.CustomerID] = e
			}
		}
	}
	for v, n := range want {
		if got[v] < n {
			t.Fatalf("event missing with noise: %s", v)
		}
	}
	t.Logf("%d exact re-sends, %d tier changes arriving after a newer one", dups, late)
	if dups < 2 || late < 2 {
		t.Errorf("%d re-sends and %d late tier changes, want a few of each", dups, late)
	}
	for id, e := range cleanTier {
		if l := latestTier[id]; l.Tier != e.Tier {
			t.Errorf("customer %s: latest tier by occurred_at %q with noise, %q without", id, l.Tier, e.Tier)
		}
	}
}

func TestOtherKeys(t *testing.T) {
	for _, share := range []float64{0, 0.05, 0.3, 1} {
		t.Run(fmt.Sprint(share), func(t *testing.T) {
			cfg := year(300, 24)
			cfg.OtherKeys = share
			msgs := Generate(cfg)
			kinds := map[string]int{}
			for _, m := range msgs {
				e, err := decode(m, cfg.End)
				if err != nil {
					t.Fatal(err)
				}
				switch key := string(m.Key); {
				case key == e.CustomerID:
					kinds["customer"]++
				case m.Key == nil:
					kinds["nil"]++
				case key == "":
					kinds["empty"]++
				case key == e.OrderID || key == e.TicketID:
					kinds["upstream id"]++
				default:
					t.Errorf("key %q for %s", m.Key, m.Value)
				}
			}
			got := 1 - float64(kinds["customer"])/float64(len(msgs))
			t.Logf("%v", kinds)
			if math.Abs(got-share) > 0.01 {
				t.Errorf("%.3f of the keys are not the customer id, want %.3f", got, share)
			}
			if share >= 0.3 && (kinds["nil"] == 0 || kinds["empty"] == 0 || kinds["upstream id"] == 0) {
				t.Errorf("keys %v: want nil, empty and upstream ids", kinds)
			}
		})
	}
}
