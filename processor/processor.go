package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/topics"
)

// Processor runs both stages in one process. Several processes with the
// same Group share the partitions.
type Processor struct {
	cfg      Config
	store    *redisstate.Store
	adm      *topics.Admin
	engine   *engine.Engine
	segments atomic.Pointer[redisstate.Segments]
	kpis     kpiState

	sourceJoined, stateJoined atomic.Bool
}

// New checks cfg and prepares a processor of set over store.
func New(cfg Config, store *redisstate.Store, set *rules.Set) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	adm, err := topics.Open(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, store: store, adm: adm}
	p.segments.Store(redisstate.Unranked())
	p.engine = engine.New(set, p.segment)
	return p, nil
}

// Metrics returns the processor's metrics.
func (p *Processor) Metrics() *metrics.Set { return p.cfg.Metrics }

// MetricsHandler serves the metrics in the Prometheus text format.
func (p *Processor) MetricsHandler() http.Handler {
	return p.cfg.Metrics.Handler()
}

// Store returns the state store.
func (p *Processor) Store() *redisstate.Store { return p.store }

// TopicSpecs returns the topics a processor of cfg reads and writes.
func TopicSpecs(cfg Config) []topics.Spec {
	cfg.setDefaults()
	p := &Processor{cfg: cfg}
	var specs []topics.Spec
	srcs := make([]string, 0, len(p.cfg.Sources))
	for t := range p.cfg.Sources {
		srcs = append(srcs, t)
	}
	sort.Strings(srcs)
	for _, t := range srcs {
		s := topics.Spec{Name: t, Partitions: int32(p.cfg.SourcePartitions), Replication: p.cfg.replication()}
		if p.cfg.Sources[t] == event.Customer { // profiles: latest wins
			compact := "compact"
			s.Configs = map[string]*string{"cleanup.policy": &compact}
		}
		specs = append(specs, s)
	}
	// The internal topic only carries events until the state stage applied
	// them; its retention bounds how long a stopped processor may stay down.
	retention := strconv.FormatInt(p.cfg.InternalRetention.Milliseconds(), 10)
	dlqMax := strconv.Itoa(DLQMaxBytes)
	return append(specs,
		topics.Spec{Name: p.cfg.InternalTopic, Partitions: int32(p.cfg.InternalPartitions), Replication: p.cfg.replication(),
			Configs: map[string]*string{"retention.ms": &retention}},
		topics.Spec{Name: p.cfg.AlertsTopic, Partitions: int32(p.cfg.SourcePartitions), Replication: p.cfg.replication()},
		topics.Spec{Name: p.cfg.DLQTopic, Partitions: 1, Replication: p.cfg.replication(),
			Configs: map[string]*string{"max.message.bytes": &dlqMax}},
	)
}

// Ready reports whether both stages joined their groups, a Kafka broker
// answers and Redis answers.
func (p *Processor) Ready(ctx context.Context) error {
	if !p.sourceJoined.Load() || !p.stateJoined.Load() {
		return fmt.Errorf("consumer groups not joined yet")
	}
	if err := p.adm.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if err := p.store.Client().Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Run processes until ctx ends, then stops fetching, lets the batch in
// progress finish and commit, and closes its clients.
func (p *Processor) Run(ctx context.Context) error {
	defer p.adm.Close()
	if p.cfg.CreateTopics {
		if _, err := p.adm.Ensure(ctx, TopicSpecs(p.cfg)); err != nil {
			return err
		}
	}
	parts, err := p.adm.Partitions(ctx, p.cfg.InternalTopic)
	if err != nil {
		return err
	}
	n := int(parts[p.cfg.InternalTopic])
	if err := p.store.Init(ctx, n); err != nil {
		return fmt.Errorf("internal topic %s: %w", p.cfg.InternalTopic, err)
	}
	rp := newRepartitioner(&p.cfg, p.adm, n)
	defer rp.close()
	w := &worker{cfg: &p.cfg, store: p.store, engine: p.engine, alerts: newSizedWriter(p.cfg.Kafka, p.cfg.AlertsTopic, nil)}
	defer w.alerts.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rp.run(ctx, p.sourceJoined.Store) })
	g.Go(func() error { return rp.markLoop(ctx) })
	g.Go(func() error { return w.run(ctx, p.stateJoined.Store) })
	g.Go(func() error { return p.segmentLoop(ctx) })
	g.Go(func() error { return p.kpiLoop(ctx) })
	g.Go(func() error { return p.healthLoop(ctx, rp, w) })
	return g.Wait()
}

// segment places trailing-365-day spend into A (top 20 %), B (next 30 %)
// or C, by the spend ranking refreshed from Redis.
func (p *Processor) segment(spend float64) string { return p.segments.Load().Of(spend) }

func (p *Processor) segmentLoop(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if g, err := p.store.Segments(ctx); err == nil {
			p.segments.Store(g)
		} else if ctx.Err() == nil {
			p.cfg.Logger.Warn("segment thresholds not refreshed", "err", err)
		}
		if err := p.store.TrimResolved(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("alert index not trimmed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Customer returns one customer's state as the admin API shows it; nil
// when unknown or erased.
func (p *Processor) Customer(ctx context.Context, id string) ([]byte, error) {
	c, err := p.store.Customer(ctx, id)
	if err != nil || c == nil || c.Deleted {
		return nil, err
	}
	reasons, err := p.engine.Explain(c)
	if err != nil {
		p.cfg.Logger.Warn("risk reasons not worded", "customer", id, "err", err)
	}
	return customerJSON(c, reasons)
}

// Alerts lists the indexed alerts of status ("firing" or "resolved"),
// newest first.
func (p *Processor) Alerts(ctx context.Context, status string, limit int) ([]json.RawMessage, error) {
	raw, err := p.store.Alerts(ctx, alerts.Status(status), limit)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(raw))
	for i, r := range raw {
		out[i] = json.RawMessage(r)
	}
	return out, nil
}
