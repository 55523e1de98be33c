package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// KPI holds the retention KPI gauges (package kpi), set each time the
// report is recomputed. Per-period gauges carry the label period (month,
// quarter, year: the current calendar periods, UTC). A ratio that is
// undefined (nothing to divide by) has no sample.
type KPI struct {
	RetentionRate    *prometheus.GaugeVec // period: (E − N) / S × 100
	ChurnRate        *prometheus.GaugeVec // period: churned / S × 100
	NewCustomers     *prometheus.GaugeVec // period: N
	StartCustomers   *prometheus.GaugeVec // period: S, active at the period start
	ChurnedCustomers *prometheus.GaugeVec // period
	NPS              *prometheus.GaugeVec // period: % promoters − % detractors
	CSATAverage      *prometheus.GaugeVec // period
	CSATSatisfied    *prometheus.GaugeVec // period: % of CSAT answers 4–5
	CESAverage       *prometheus.GaugeVec // period
	ActiveCustomers  prometheus.Gauge     // E, active now
	Customers        prometheus.Gauge     // seen and not erased
	RepeatPurchase   *prometheus.GaugeVec // no labels
	AverageLTV       *prometheus.GaugeVec // no labels
	Segments         *prometheus.GaugeVec // segment
	ComputedAt       prometheus.Gauge     // Unix seconds of the report's as_of
}

// NewKPI returns the KPI gauges registered in reg. Gauges already
// registered there (by an earlier NewKPI on the same registry) are reused.
func NewKPI(reg prometheus.Registerer) *KPI {
	perPeriod := func(name, help string) *prometheus.GaugeVec {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"period"}))
	}
	noLabels := func(name, help string) *prometheus.GaugeVec {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, nil))
	}
	gauge := func(name, help string) prometheus.Gauge {
		return register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
	}
	return &KPI{
		RetentionRate:    perPeriod("churnwatch_kpi_retention_rate_percent", "Customer retention rate (E − N) / S × 100 of the current period."),
		ChurnRate:        perPeriod("churnwatch_kpi_churn_rate_percent", "Customers active at the period start who churned since, as a percentage of them."),
		NewCustomers:     perPeriod("churnwatch_kpi_new_customers", "Customers first seen in the current period (N)."),
		StartCustomers:   perPeriod("churnwatch_kpi_period_start_customers", "Customers active at the start of the current period (S)."),
		ChurnedCustomers: perPeriod("churnwatch_kpi_churned_customers", "Customers active at the period start who have churned since."),
		NPS:              perPeriod("churnwatch_kpi_nps", "Net promoter score (% promoters − % detractors) of the latest answers given in the current period."),
		CSATAverage:      perPeriod("churnwatch_kpi_csat_average", "Average CSAT (1–5) of the latest answers given in the current period."),
		CSATSatisfied:    perPeriod("churnwatch_kpi_csat_satisfied_percent", "Share of CSAT answers of 4 or 5 among the latest answers given in the current period."),
		CESAverage:       perPeriod("churnwatch_kpi_ces_average", "Average customer effort score (1–7) of the latest answers given in the current period."),
		ActiveCustomers:  gauge("churnwatch_kpi_active_customers", "Customers active now (an event within the churn inactivity)."),
		Customers:        gauge("churnwatch_kpi_customers", "Customers seen and not erased."),
		RepeatPurchase:   noLabels("churnwatch_kpi_repeat_purchase_rate_percent", "Customers with at least two purchases as a percentage of those with at least one."),
		AverageLTV:       noLabels("churnwatch_kpi_average_lifetime_value", "Lifetime spend per customer with at least one purchase."),
		Segments: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_kpi_segment_customers", Help: "Customers per spend segment (A top 20 %, B next 30 %, C the rest).",
		}, []string{"segment"})),
		ComputedAt: gauge("churnwatch_kpi_as_of_timestamp_seconds", "Event time the KPI gauges describe, Unix seconds."),
	}
}

// register registers c in reg, or returns the equal collector registered
// before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

// SetRatio sets g to *v, or removes its sample when v is nil (undefined).
func SetRatio(g *prometheus.GaugeVec, v *float64, labels ...string) {
	if v == nil {
		g.DeleteLabelValues(labels...)
		return
	}
	g.WithLabelValues(labels...).Set(*v)
}
