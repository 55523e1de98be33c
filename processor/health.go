package processor

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/churnwatch/churnwatch/topics"
)

// owned is the set of internal partitions this instance's state stage
// holds now.
type owned struct {
	mu sync.Mutex
	m  map[int]bool
}

func (o *owned) set(p int, on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[int]bool{}
	}
	if on {
		o.m[p] = true
	} else {
		delete(o.m, p)
	}
}

func (o *owned) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

func (o *owned) list() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]int, 0, len(o.m))
	for p := range o.m {
		out = append(out, p)
	}
	return out
}

// healthLoop publishes, every LagInterval, the consumer lag of both groups
// per partition, the pending timers of the owned internal partitions, and
// which owned source partitions are stalled.
func (p *Processor) healthLoop(ctx context.Context, rp *repartitioner, w *worker) error {
	t := time.NewTicker(p.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.reportHealth(ctx, rp, w); err != nil && ctx.Err() == nil {
			p.cfg.Metrics.Errors.WithLabelValues("read consumer lag").Inc()
			p.cfg.Logger.Warn("consumer lag not read", "err", err)
		}
	}
}

func (p *Processor) reportHealth(ctx context.Context, rp *repartitioner, w *worker) error {
	m := p.cfg.Metrics
	for _, part := range w.owned.list() {
		n, err := p.store.PendingTimers(ctx, part)
		if err != nil {
			return err
		}
		m.TimersPending.WithLabelValues(strconv.Itoa(part)).Set(float64(n))
	}
	lags, err := p.adm.Lags(ctx, p.cfg.Group+"-source", p.cfg.Group)
	if err != nil {
		return err
	}
	for _, l := range lags {
		m.ConsumerLag.WithLabelValues(l.Group, l.Topic, strconv.Itoa(int(l.Partition))).Set(float64(l.Lag))
	}
	rp.checkStalls(lags, p.cfg.Now(), p.cfg.StallTimeout)
	return nil
}

// checkStalls marks an owned source partition stalled while it has unread
// messages (lag) but none arrived for timeout (a partition held back by
// the read-ahead bound is waiting, not stalled), logs each change and sets
// the churnwatch_source_stalled gauge.
func (r *repartitioner) checkStalls(lags []topics.Lag, now time.Time, timeout time.Duration) {
	lag := map[source]int64{}
	for _, l := range lags {
		if l.Group == r.cfg.Group+"-source" {
			lag[source{l.Topic, l.Partition}] = l.Lag
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, p := range r.assigned {
		stalled := lag[s] > 0 && !p.held && now.Sub(p.lastRecord) > timeout
		if stalled != p.stalled {
			if stalled {
				r.cfg.Logger.Warn("source partition stalled: messages wait but none was read", "topic", s.Topic,
					"partition", s.Partition, "lag", lag[s], "since", p.lastRecord)
			} else {
				r.cfg.Logger.Info("source partition reads again", "topic", s.Topic, "partition", s.Partition)
			}
			p.stalled = stalled
		}
		v := 0.0
		if stalled {
			v = 1
		}
		r.cfg.Metrics.SourceStalled.WithLabelValues(s.Topic, strconv.Itoa(int(s.Partition))).Set(v)
	}
}
