package processor

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/churnwatch/churnwatch/topics"
)

// TestCommitsAreSpaced: live traffic arriving in many small batches is
// committed at most about once per CommitInterval per partition, not once
// per batch; once the traffic stops, every offset of both stages is
// committed.
func TestCommitsAreSpaced(t *testing.T) {
	const interval = 400 * time.Millisecond
	e := newEnvWith(t, end, func(c *Config) {
		c.CommitInterval = interval
		c.BatchWait = time.Millisecond
	})
	var mu sync.Mutex
	commits := map[string]int{} // topic/partition → offset commits naming it
	e.cluster.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.OffsetCommitRequest).Topics {
			for _, p := range tp.Partitions {
				commits[fmt.Sprintf("%s/%d", tp.Topic, p.Partition)]++
			}
		}
		return nil, nil, false // counted only; the broker handles it
	})
	r := e.start()
	ctx := context.Background()
	eventually(t, 30*time.Second, "ready", func() bool { return r.p.Ready(ctx) == nil })

	began := time.Now()
	for i := 0; time.Since(began) < 2*time.Second; i++ {
		e.produce(usage(fmt.Sprintf("c%d", i%40), end.Add(-time.Hour), float64(i)))
		time.Sleep(3 * time.Millisecond)
	}
	elapsed := time.Since(began)
	mu.Lock()
	during := maps.Clone(commits) // once quiet, marks are committed as they come
	mu.Unlock()

	adm, err := topics.NewAdmin(e.brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	srcEnds, err := adm.EndOffsets(ctx, "usage")
	if err != nil {
		t.Fatal(err)
	}
	intEnds, err := adm.EndOffsets(ctx, "churnwatch-events")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every offset committed after the traffic stopped", func() bool {
		src, err1 := adm.Committed(ctx, "churnwatch-source", srcEnds)
		st, err2 := adm.Committed(ctx, "churnwatch", intEnds)
		return err1 == nil && err2 == nil && src && st
	})

	batches := histogramCount(t, r.p.Metrics().BatchSeconds.WithLabelValues("source")) +
		histogramCount(t, r.p.Metrics().BatchSeconds.WithLabelValues("state"))
	total := 0
	limit := int(elapsed/interval) + 3 // the interval's worth and the first commits
	for tp, n := range during {
		total += n
		if n > limit {
			t.Errorf("%s: %d offset commits in %s; want at most %d with a commit interval of %s", tp, n, elapsed.Round(time.Millisecond), limit, interval)
		}
	}
	if total == 0 || batches < 3*uint64(total) {
		t.Errorf("%d batches, %d offset commits: want far fewer commits than batches", batches, total)
	}
	t.Logf("%d batches, %d offset commits over %d partitions in %s", batches, total, len(during), elapsed.Round(time.Millisecond))
}

func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
