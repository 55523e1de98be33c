package redisstate

import (
	"context"
	"maps"
	"testing"
	"time"
)

func TestTimers(t *testing.T) {
	s, rdb := started(t, 1)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	pt := s.Partition(0)
	write := func(pt *Partition, moves ...TimerMove) {
		t.Helper()
		if err := pt.Write(ctx, &Batch{Timers: moves}); err != nil {
			t.Fatal(err)
		}
	}
	due := func(pt *Partition, at time.Duration, limit int) []Due {
		t.Helper()
		d, err := pt.Due(ctx, t0.Add(at), limit)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	same := func(what string, got []Due, want ...Due) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", what, got, want)
				return
			}
		}
	}
	// a and c share the bucket of hour 1, b is in hour 2.
	write(pt, TimerMove{"a", 0, ms(time.Hour)}, TimerMove{"b", 0, ms(2 * time.Hour)}, TimerMove{"c", 0, ms(90 * time.Minute)})
	same("at 0:30", due(pt, 30*time.Minute, 10))
	same("at 1:15", due(pt, 75*time.Minute, 10), Due{"a", ms(time.Hour)})
	same("at 1:40", due(pt, 100*time.Minute, 10), Due{"a", ms(time.Hour)}, Due{"c", ms(90 * time.Minute)})
	same("limit 1", due(pt, 100*time.Minute, 1), Due{"a", ms(time.Hour)})
	same("fresh reader agrees", due(s.Partition(0), 100*time.Minute, 10), Due{"a", ms(time.Hour)}, Due{"c", ms(90 * time.Minute)})

	// a fires and moves on; c goes away: hour 1 is empty and leaves the index.
	write(pt, TimerMove{"a", ms(time.Hour), ms(5 * time.Hour)}, TimerMove{"c", ms(90 * time.Minute), 0})
	same("after the moves", due(pt, 3*time.Hour, 10), Due{"b", ms(2 * time.Hour)})
	if n, _ := rdb.ZCard(ctx, "cw:{p0}:ti").Result(); n != 2 {
		t.Errorf("index holds %d buckets, want 2 (hours 2 and 5)", n)
	}
	if all, err := s.Timers(ctx, 0); err != nil || !maps.Equal(all, map[string]int64{"a": ms(5 * time.Hour), "b": ms(2 * time.Hour)}) {
		t.Errorf("timers %v %v", all, err)
	}
	if n, err := s.PendingTimers(ctx, 0); n != 2 || err != nil {
		t.Errorf("pending %d %v", n, err)
	}

	// A writer that never read hour 2 removes b from it: the index keeps a
	// low score there until a reader finds the bucket empty and the next
	// write drops it.
	other := s.Partition(0)
	write(other, TimerMove{"b", ms(2 * time.Hour), 0})
	if n, _ := rdb.ZCard(ctx, "cw:{p0}:ti").Result(); n != 2 {
		t.Errorf("index holds %d buckets, want 2 (a stale entry for hour 2)", n)
	}
	same("stale entry", due(other, 3*time.Hour, 10))
	write(other)
	if n, _ := rdb.ZCard(ctx, "cw:{p0}:ti").Result(); n != 1 {
		t.Errorf("index holds %d buckets after the fix, want 1", n)
	}
	// A timer added to a bucket that was read lowers its earliest due.
	same("a not yet due", due(other, 4*time.Hour, 10))
	write(other, TimerMove{"d", 0, ms(3 * time.Hour)}, TimerMove{"e", 0, ms(5*time.Hour - time.Minute)})
	same("e due before a", due(other, 5*time.Hour-time.Minute, 10), Due{"d", ms(3 * time.Hour)}, Due{"e", ms(5*time.Hour - time.Minute)})
	same("a reader afresh agrees", due(s.Partition(0), 5*time.Hour-time.Minute, 10), Due{"d", ms(3 * time.Hour)}, Due{"e", ms(5*time.Hour - time.Minute)})
}

// TestTimerCacheResetOnFailure: a failed write forgets what the cache
// learnt, so it reads Redis again.
func TestTimerCacheResetOnFailure(t *testing.T) {
	s, _ := started(t, 1)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pt := s.Partition(0)
	if err := pt.Write(ctx, &Batch{Timers: []TimerMove{{"a", 0, t0.UnixMilli()}}}); err != nil {
		t.Fatal(err)
	}
	if d, err := pt.Due(ctx, t0, 10); err != nil || len(d) != 1 {
		t.Fatalf("due %v %v", d, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := pt.Write(cancelled, &Batch{Timers: []TimerMove{{"a", t0.UnixMilli(), 0}}}); err == nil {
		t.Fatal("write with a cancelled context succeeded")
	}
	if pt.timers.loaded {
		t.Error("timer cache kept after a failed write")
	}
	if d, err := pt.Due(ctx, t0, 10); err != nil || len(d) != 1 || d[0].ID != "a" {
		t.Errorf("after the failed write: %v %v, want a still due", d, err)
	}
}
