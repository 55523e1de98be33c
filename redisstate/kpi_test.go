package redisstate

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/state"
)

// countHook counts the sorted-set writes of pipelines.
type countHook struct{ n int }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if n := c.Name(); n == "zadd" || n == "zrem" {
				h.n++
			}
		}
		return next(ctx, cmds)
	}
}

func TestKPIFacts(t *testing.T) {
	rdb, _ := redistest.Start(t)
	ctx := context.Background()
	hook := &countHook{}
	rdb.AddHook(hook)
	s := New(rdb, "")
	k := NewKPIKeys("")
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	c := state.New("a")
	apply := func(e event.Event) {
		t.Helper()
		old := FactsOf(c)
		c.AsOf = e.OccurredAt
		c.Apply(&e)
		hook.n = 0
		if err := s.Write(ctx, &Batch{KPI: map[string]KPIChange{c.ID: {Old: old, New: FactsOf(c)}}}); err != nil {
			t.Fatal(err)
		}
	}
	score := func(key string) (float64, bool) {
		v, err := rdb.ZScore(ctx, key, "a").Result()
		return v, err == nil
	}
	want := func(key string, v float64) {
		t.Helper()
		if got, ok := score(key); !ok || got != v {
			t.Errorf("%s: %g (present %v), want %g", key, got, ok, v)
		}
	}

	apply(event.Event{Type: event.Purchase, OccurredAt: t0, Amount: 40})
	want(k.First, float64(t0.UnixMilli()))
	want(k.Last, float64(t0.UnixMilli()))
	want(k.Purchases, 1)
	want(k.LTV, 40)
	if hook.n != 4 {
		t.Errorf("first purchase: %d commands, want 4 (first, last, purchases, ltv)", hook.n)
	}

	for i, want := range []int{3, 2} { // last, purchases (up to 2), ltv
		apply(event.Event{Type: event.Purchase, OccurredAt: t0.Add(time.Duration(i+1) * time.Second), Amount: 5})
		if hook.n != want {
			t.Errorf("purchase %d: %d commands, want %d", i+2, hook.n, want)
		}
	}
	want(k.Purchases, 2)
	want(k.LTV, 50)

	t1 := t0.Add(time.Hour)
	apply(event.Event{Type: event.Usage, OccurredAt: t1, Metric: "sessions", Value: 1})
	want(k.Last, float64(t1.UnixMilli()))
	want(k.First, float64(t0.UnixMilli()))
	if hook.n != 1 {
		t.Errorf("usage: %d commands, want 1 (last only)", hook.n)
	}

	t2 := t1.Add(time.Hour)
	apply(event.Event{Type: event.Feedback, OccurredAt: t2, Kind: event.NPS, Score: 4})
	want(k.NPS[Detractor], float64(t2.UnixMilli()))
	apply(event.Event{Type: event.Feedback, OccurredAt: t2.Add(time.Minute), Kind: event.NPS, Score: 9})
	want(k.NPS[Promoter], float64(t2.Add(time.Minute).UnixMilli()))
	if hook.n != 3 {
		t.Errorf("new NPS category: %d commands, want 3 (last, leave detractor, join promoter)", hook.n)
	}
	if _, ok := score(k.NPS[Detractor]); ok {
		t.Error("still a detractor after a promoter answer")
	}
	apply(event.Event{Type: event.Feedback, OccurredAt: t2, Kind: event.CSAT, Score: 4})
	apply(event.Event{Type: event.Feedback, OccurredAt: t2, Kind: event.CES, Score: 7})
	want(k.CSAT[3], float64(t2.UnixMilli()))
	want(k.CES[6], float64(t2.UnixMilli()))
	// An older answer arriving late changes nothing.
	apply(event.Event{Type: event.Feedback, OccurredAt: t0, Kind: event.CSAT, Score: 1})
	if hook.n != 0 {
		t.Errorf("late older answer: %d commands, want none", hook.n)
	}
	want(k.CSAT[3], float64(t2.UnixMilli()))

	apply(event.Event{Type: event.Customer, OccurredAt: t2.Add(time.Hour), Deleted: true})
	for _, key := range k.all() {
		if _, ok := score(key); ok {
			t.Errorf("erased customer still in %s", key)
		}
	}

	// Seen again after the erasure, the customer starts afresh.
	t3 := t2.Add(2 * time.Hour)
	apply(event.Event{Type: event.Usage, OccurredAt: t3, Metric: "sessions", Value: 1})
	want(k.First, float64(t3.UnixMilli()))
	want(k.Last, float64(t3.UnixMilli()))
	for _, key := range []string{k.Purchases, k.LTV, k.NPS[Promoter], k.CSAT[3]} {
		if _, ok := score(key); ok {
			t.Errorf("%s came back after the erasure", key)
		}
	}
}

func TestSegmentSizes(t *testing.T) {
	rdb, _ := redistest.Start(t)
	s := New(rdb, "")
	ctx := context.Background()
	if a, b, c, err := s.SegmentSizes(ctx); err != nil || a+b+c != 0 {
		t.Fatalf("empty: %d %d %d %v", a, b, c, err)
	}
	spend := map[string]float64{}
	for i := range 10 {
		spend[string(rune('a'+i))] = float64(i * 10) // 0 … 90
	}
	if err := s.Write(ctx, &Batch{Spend: spend}); err != nil {
		t.Fatal(err)
	}
	// Top 20 % of 10: 90, 80 (A); next 30 %: 70, 60, 50 (B); rest C.
	if a, b, c, err := s.SegmentSizes(ctx); err != nil || a != 2 || b != 3 || c != 5 {
		t.Errorf("segments %d %d %d %v, want 2 3 5", a, b, c, err)
	}
}
