package processor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/internal/redistest"
)

// TestRedisCluster runs the processor against a three-node Redis Cluster:
// customers, timers, watermarks, alert index, segments and KPI sets spread
// over the slots by their hash tags, with the same result as one node.
func TestRedisCluster(t *testing.T) {
	rdb := redistest.StartCluster(t)
	msgs := liveHistory()
	final := end.Add(-5 * time.Minute)
	e := newEnvOn(t, end, rdb, nil)
	e.produce(msgs...)
	r := e.start()
	e.waitWatermark(final, 2*time.Minute)
	e.matchesOracle(t, msgs, final, "on a Redis Cluster")
	ctx := context.Background()
	if as, err := r.p.Alerts(ctx, "firing", 100); err != nil || len(as) == 0 {
		t.Errorf("alert index on the cluster: %d alerts, %v", len(as), err)
	}
	if _, err := r.p.KPIs(ctx); err != nil {
		t.Errorf("KPIs on the cluster: %v", err)
	}
	var shards atomic.Int32
	rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { //nolint:errcheck // counted below
		if n, _ := c.DBSize(ctx).Result(); n > 0 {
			shards.Add(1)
		}
		return nil
	})
	if shards.Load() < 2 {
		t.Errorf("keys on %d node(s): the hash tags do not spread the customers", shards.Load())
	}
}
