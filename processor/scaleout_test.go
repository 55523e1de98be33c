package processor

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestThreeInstancesTakeOver runs three instances in one consumer group
// over a year of history: they share the partitions; one is stopped in the
// middle of the stream and the other two take over its partitions. The
// alerts and every customer's state equal an uninterrupted offline run:
// nothing lost, nothing applied twice.
func TestThreeInstancesTakeOver(t *testing.T) {
	back, _ := backfillHistory()
	msgs := append(back, liveHistory()...)
	sortByTime(msgs)
	final := end.Add(-5 * time.Minute)

	// Small batches keep the backlog busy long enough for the groups to
	// settle with three members and for one to leave mid-stream.
	e := newEnvWith(t, end, func(c *Config) { c.BatchSize = 20 })
	e.produce(msgs...)
	rs := []*running{e.start(), e.start(), e.start()}
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < len(rs); {
		if rs[i].p.Ready(ctx) == nil && testutil.ToFloat64(rs[i].p.Metrics().StatesWritten) > 0 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d did not join and process within a minute: the partitions are not shared", i)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if wm := e.lowestWatermark(); !wm.Before(final.Add(-30 * day)) {
		t.Fatalf("the backlog was nearly done (watermark %s) before the stop: not mid-stream", wm)
	}
	before := testutil.ToFloat64(rs[0].p.Metrics().StatesWritten) + testutil.ToFloat64(rs[2].p.Metrics().StatesWritten)
	rs[1].stop(t)

	e.waitWatermark(final, 2*time.Minute) // every partition, including those the stopped one owned
	if after := testutil.ToFloat64(rs[0].p.Metrics().StatesWritten) + testutil.ToFloat64(rs[2].p.Metrics().StatesWritten); after <= before {
		t.Errorf("the remaining instances wrote no state after the stop (%g, then %g)", before, after)
	}
	e.matchesOracle(t, msgs, final, "after the take-over")
}
