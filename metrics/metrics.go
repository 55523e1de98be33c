// Package metrics defines churnwatch's Prometheus metrics. The processor
// records into a *Set; the admin server exposes its registry at /metrics.
// Names follow Prometheus conventions: churnwatch_<what>_<unit>.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set holds every metric and the registry they are registered in.
type Set struct {
	Registry *prometheus.Registry

	EventsIn        *prometheus.CounterVec   // topic, type
	DeadLetters     *prometheus.CounterVec   // topic, reason
	Alerts          *prometheus.CounterVec   // rule, status
	BatchSeconds    *prometheus.HistogramVec // stage
	WatermarkDelay  *prometheus.GaugeVec     // partition (internal): wall clock − watermark, seconds
	TimersFired     prometheus.Counter
	InternalDropped *prometheus.CounterVec // reason (forwarded-again, overtook-failed-write)
	Errors          *prometheus.CounterVec // operation
	StatesWritten   prometheus.Counter
	EventToAlertLag prometheus.Histogram // wall clock at production − alert time, seconds (live only is meaningful)

	WebhookAttempts   *prometheus.CounterVec // endpoint, outcome (delivered, retry, dead-letter, disable)
	WebhookSuppressed *prometheus.CounterVec // reason
	WebhookPending    *prometheus.GaugeVec   // endpoint
	WebhookDead       *prometheus.GaugeVec   // endpoint
	WebhookHeld       prometheus.Counter

	ConsumerLag   *prometheus.GaugeVec // group, topic, partition: end offset − committed offset
	SourceStalled *prometheus.GaugeVec // topic, partition: 1 while records wait but none arrived for a while
	TimersPending *prometheus.GaugeVec // partition (internal)
}

// New returns a Set registered in a fresh registry, with the Go runtime
// and process collectors.
func New() *Set {
	s := &Set{
		Registry: prometheus.NewRegistry(),
		EventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_events_in_total", Help: "Valid events read from the source topics.",
		}, []string{"topic", "type"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_dead_letters_total", Help: "Messages sent to the dead-letter topic, by reason.",
		}, []string{"topic", "reason"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_alerts_total", Help: "Alert events produced, by rule and status.",
		}, []string{"rule", "status"}),
		BatchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "churnwatch_batch_duration_seconds", Help: "Time to process one batch, by stage.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"stage"}),
		WatermarkDelay: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_watermark_delay_seconds", Help: "Wall clock minus the event-time watermark, per internal partition.",
		}, []string{"partition"}),
		TimersFired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "churnwatch_timers_fired_total", Help: "Customers advanced because a timer was due.",
		}),
		InternalDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_internal_dropped_total", Help: "Internal events the state stage dropped by their origin: forwarded-again (its source offset was applied before) or overtook-failed-write (an earlier event of its source partition is missing; the write that failed is retried and brings both).",
		}, []string{"reason"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_errors_total", Help: "Failed operations against Kafka or Redis, by operation (each is retried).",
		}, []string{"operation"}),
		StatesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "churnwatch_states_written_total", Help: "Customer states written to Redis.",
		}),
		EventToAlertLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "churnwatch_event_to_alert_seconds", Help: "Wall-clock time from an alert's event time to its production.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		WebhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_webhook_attempts_total", Help: "Webhook delivery attempts, by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		WebhookSuppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "churnwatch_webhook_suppressed_total", Help: "Notifications not sent, by reason (holdout, silenced, cap-rule, cap-customer, firing-not-notified).",
		}, []string{"reason"}),
		WebhookPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_webhook_pending", Help: "Deliveries waiting for their first attempt or a retry, per endpoint.",
		}, []string{"endpoint"}),
		WebhookDead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_webhook_dead_letters", Help: "Deliveries dead-lettered and kept for replay, per endpoint.",
		}, []string{"endpoint"}),
		WebhookHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "churnwatch_webhook_held_total", Help: "Times an absence notification was held back because the watermark lags the wall clock (stall guard).",
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_consumer_lag", Help: "Messages not yet consumed (end offset − committed offset), per group, topic and partition.",
		}, []string{"group", "topic", "partition"}),
		SourceStalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_source_stalled", Help: "1 while a source partition has unread messages but none was read for the stall timeout.",
		}, []string{"topic", "partition"}),
		TimersPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "churnwatch_timers_pending", Help: "Customers with a pending timer (absence deadline or window edge), per internal partition.",
		}, []string{"partition"}),
	}
	s.Registry.MustRegister(s.EventsIn, s.DeadLetters, s.Alerts, s.BatchSeconds, s.WatermarkDelay,
		s.TimersFired, s.InternalDropped, s.Errors, s.StatesWritten, s.EventToAlertLag,
		s.WebhookAttempts, s.WebhookSuppressed, s.WebhookPending, s.WebhookDead, s.WebhookHeld,
		s.ConsumerLag, s.SourceStalled, s.TimersPending,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// Handler serves the set in the Prometheus text format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry})
}
