package redisstate

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/state"
)

// countHook counts the hash increments of transactions.
type countHook struct{ n int }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if n := c.Name(); n == "hincrby" || n == "hincrbyfloat" {
				h.n++
			}
		}
		return next(ctx, cmds)
	}
}

func TestCounters(t *testing.T) {
	s, rdb := started(t, 1)
	ctx := context.Background()
	hook := &countHook{}
	rdb.AddHook(hook)
	pt := s.Partition(0)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	month := MonthOf(t0.UnixMilli())

	c := state.New("a")
	apply := func(e event.Event) {
		t.Helper()
		old := FactsOf(c)
		c.AsOf = e.OccurredAt
		c.Apply(&e)
		hook.n = 0
		var k Counters
		k.Facts(old, FactsOf(c))
		if err := pt.Write(ctx, &Batch{Counters: &k}); err != nil {
			t.Fatal(err)
		}
	}
	read := func() *KPICounts {
		t.Helper()
		k, err := s.KPICounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	customers := func(k *KPICounts) map[[2]int64]int64 {
		out := map[[2]int64]int64{}
		for fl, n := range k.Customers {
			if n != 0 {
				out[fl] = n
			}
		}
		return out
	}

	apply(event.Event{Type: event.Purchase, OccurredAt: t0, Amount: 40})
	k := read()
	if got := customers(k); len(got) != 1 || got[[2]int64{int64(month), HourOf(t0.UnixMilli())}] != 1 {
		t.Errorf("customers %v", got)
	}
	if k.Buyers != 1 || k.Repeat != 0 || k.LTV != 40 {
		t.Errorf("buyers %d, repeat %d, ltv %g", k.Buyers, k.Repeat, k.LTV)
	}
	if hook.n != 3 {
		t.Errorf("first purchase: %d increments, want 3 (customer, buyer, ltv)", hook.n)
	}
	apply(event.Event{Type: event.Purchase, OccurredAt: t0.Add(time.Second), Amount: 5})
	if hook.n != 2 {
		t.Errorf("second purchase in the same hour: %d increments, want 2 (repeat, ltv)", hook.n)
	}
	apply(event.Event{Type: event.Usage, OccurredAt: t0.Add(2 * time.Second), Metric: "sessions", Value: 1})
	if hook.n != 0 {
		t.Errorf("usage in the same hour: %d increments, want none", hook.n)
	}
	t1 := t0.Add(time.Hour)
	apply(event.Event{Type: event.Usage, OccurredAt: t1, Metric: "sessions", Value: 1})
	if hook.n != 2 {
		t.Errorf("usage an hour later: %d increments, want 2 (leave one hour, join the next)", hook.n)
	}
	if got := customers(read()); len(got) != 1 || got[[2]int64{int64(month), HourOf(t1.UnixMilli())}] != 1 {
		t.Errorf("customers after an hour %v", got)
	}

	t2 := t1.Add(time.Hour)
	apply(event.Event{Type: event.Feedback, OccurredAt: t2, Kind: event.NPS, Score: 4})
	apply(event.Event{Type: event.Feedback, OccurredAt: t2.Add(time.Minute), Kind: event.NPS, Score: 9})
	k = read()
	if k.Answers["nps"][[2]int64{Promoter, int64(month)}] != 1 || k.Answers["nps"][[2]int64{Detractor, int64(month)}] != 0 {
		t.Errorf("NPS answers %v, want one promoter", k.Answers["nps"])
	}
	apply(event.Event{Type: event.Feedback, OccurredAt: t2, Kind: event.CSAT, Score: 4})
	// An older answer arriving late changes nothing.
	apply(event.Event{Type: event.Feedback, OccurredAt: t0, Kind: event.CSAT, Score: 1})
	if hook.n != 0 {
		t.Errorf("late older answer: %d increments, want none", hook.n)
	}

	apply(event.Event{Type: event.Customer, OccurredAt: t2.Add(time.Hour), Deleted: true})
	k = read()
	if got := customers(k); len(got) != 0 || k.Buyers != 0 || k.Repeat != 0 || k.LTV != 0 {
		t.Errorf("erased customer still counted: %v, buyers %d, repeat %d, ltv %g", got, k.Buyers, k.Repeat, k.LTV)
	}
	for kind, m := range k.Answers {
		for key, n := range m {
			if n != 0 {
				t.Errorf("erased customer's %s answer still counted: %v %d", kind, key, n)
			}
		}
	}
}

// TestFirstSeenAtMonthStart: one first seen at the first instant of a
// month counts in the month before, so that "first seen after the period
// start" stays exact.
func TestFirstSeenAtMonthStart(t *testing.T) {
	start := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var k Counters
	k.Facts(KPIFacts{NPS: -1, CSAT: -1, CES: -1}, KPIFacts{First: start, Last: start, NPS: -1, CSAT: -1, CES: -1})
	k.Facts(KPIFacts{NPS: -1, CSAT: -1, CES: -1}, KPIFacts{First: start + 1, Last: start + 1, NPS: -1, CSAT: -1, CES: -1})
	aug := MonthOf(start)
	if k.kpi[counter{'l', aug - 1, HourOf(start)}] != 1 || k.kpi[counter{'l', aug, HourOf(start)}] != 1 {
		t.Errorf("counters %v", k.kpi)
	}
	if !MonthStart(aug).Equal(time.UnixMilli(start).UTC()) {
		t.Errorf("MonthStart(%d) = %s", aug, MonthStart(aug))
	}
}
