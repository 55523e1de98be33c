package processor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/churnwatch/churnwatch/kpi"
	"github.com/churnwatch/churnwatch/metrics"
)

// kpiState is the latest retention KPI report and its gauges.
type kpiState struct {
	mu     sync.Mutex // one computation at a time, so reports never go back
	once   sync.Once
	gauges *metrics.KPI
	latest atomic.Pointer[kpi.Report]
	// computed is the wall-clock time (Unix ns) of latest.
	computed atomic.Int64
}

// kpiFresh is how old a report may be when /api/kpis serves it.
const kpiFresh = 5 * time.Second

// KPIs returns the latest retention KPI report (a *kpi.Report), computing
// one if none was yet.
func (p *Processor) KPIs(ctx context.Context) (any, error) {
	// A report at most a few seconds old is served as is; an older one is
	// recomputed on request (the loop refreshes the gauges every KPIInterval).
	if r := p.kpis.latest.Load(); r != nil && time.Since(time.Unix(0, p.kpis.computed.Load())) < kpiFresh {
		return r, nil
	}
	return p.refreshKPIs(ctx)
}

// kpiLoop recomputes the KPIs every KPIInterval.
func (p *Processor) kpiLoop(ctx context.Context) error {
	t := time.NewTicker(p.cfg.KPIInterval)
	defer t.Stop()
	for {
		if _, err := p.refreshKPIs(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Metrics.Errors.WithLabelValues("compute kpis").Inc()
			p.cfg.Logger.Warn("retention KPIs not computed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// refreshKPIs computes the KPIs as of the processor's event-time
// watermark (the wall clock before any partition published one), keeps
// the report and sets the gauges.
func (p *Processor) refreshKPIs(ctx context.Context) (*kpi.Report, error) {
	k := &p.kpis
	k.mu.Lock()
	defer k.mu.Unlock()
	now, err := p.store.Clock(ctx)
	if err != nil {
		return nil, err
	}
	if now.IsZero() {
		now = p.cfg.Now()
	}
	r, err := kpi.Compute(ctx, p.store.Client(), p.store.Prefix(), now, p.cfg.ChurnInactivity)
	if err != nil {
		return nil, err
	}
	k.latest.Store(r)
	k.computed.Store(time.Now().UnixNano())
	k.once.Do(func() { k.gauges = metrics.NewKPI(p.cfg.Metrics.Registry) })
	setKPIGauges(k.gauges, r)
	return r, nil
}

func setKPIGauges(g *metrics.KPI, r *kpi.Report) {
	for _, name := range kpi.PeriodNames {
		per := r.Periods.ByName(name)
		metrics.SetRatio(g.RetentionRate, per.RetentionRate, name)
		metrics.SetRatio(g.ChurnRate, per.ChurnRate, name)
		g.NewCustomers.WithLabelValues(name).Set(float64(per.NewCustomers))
		g.StartCustomers.WithLabelValues(name).Set(float64(per.CustomersAtStart))
		g.ChurnedCustomers.WithLabelValues(name).Set(float64(per.ChurnedCustomers))
		metrics.SetRatio(g.NPS, per.NPS, name)
		metrics.SetRatio(g.CSATAverage, per.CSATAverage, name)
		metrics.SetRatio(g.CSATSatisfied, per.CSATSatisfied, name)
		metrics.SetRatio(g.CESAverage, per.CESAverage, name)
	}
	g.ActiveCustomers.Set(float64(r.ActiveCustomers))
	g.Customers.Set(float64(r.Customers))
	metrics.SetRatio(g.RepeatPurchase, r.RepeatPurchaseRate)
	metrics.SetRatio(g.AverageLTV, r.AverageLifetimeValue)
	g.Segments.WithLabelValues("A").Set(float64(r.Segments.A))
	g.Segments.WithLabelValues("B").Set(float64(r.Segments.B))
	g.Segments.WithLabelValues("C").Set(float64(r.Segments.C))
	g.ComputedAt.Set(float64(r.AsOf.UnixMilli()) / 1000)
}
