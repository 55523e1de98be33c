// Package processor runs churnwatch's two stages against Kafka and Redis.
//
// The source stage consumes the upstream topics (any key, any
// partitioning), validates each message, sends bad ones to the dead-letter
// topic and re-keys good ones by customer id onto the internal topic, so
// that one partition, and so one goroutine of one instance, owns each
// customer. It also publishes watermark marks: per source partition, the
// highest occurred_at read, or the wall clock when the partition is caught
// up.
//
// The state stage consumes the internal topic. Per batch it loads the
// touched and due customers from Redis in one pipeline, lets the engine
// advance them to the watermark, produces the alerts, writes states and
// timers in one pipeline, and only then commits the offsets. State carries
// the last applied offset, so a redelivered message changes nothing.
package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/metrics"
)

// Config configures a Processor. The zero value of every field but Brokers
// (or Kafka.Brokers) means its documented default.
type Config struct {
	// Brokers are the bootstrap brokers, reached in plaintext unless Kafka
	// says otherwise.
	Brokers []string
	// Kafka is how every Kafka client of the processor connects: brokers,
	// TLS and SASL. Its Brokers default to Brokers.
	Kafka kafkaconn.Conn
	// Group is the consumer group of the state stage; the source stage uses
	// Group+"-source". Default "churnwatch".
	Group string
	// Sources maps source topics to their default event type. Default: the
	// five topics of the contract.
	Sources map[string]event.Type
	// InternalTopic is the repartition topic. Default "churnwatch-events".
	InternalTopic string
	// InternalPartitions is used when the internal topic is created. Default 12.
	InternalPartitions int
	AlertsTopic        string // default "churn-alerts"
	DLQTopic           string // default "churn-dlq"
	// CreateTopics creates missing topics at start (with SourcePartitions
	// partitions for sources). Production usually runs `churnwatch topics`.
	CreateTopics     bool
	SourcePartitions int // default 3
	// Replication of created topics; 0 takes the broker default.
	Replication int
	// InternalRetention is the retention of the internal topic when
	// created. Default 7 days.
	InternalRetention time.Duration
	// Lateness is subtracted from the watermark. Default 5 minutes.
	Lateness time.Duration
	// ReadAhead is how far, in event time, a source partition may be read
	// ahead of the slowest one. Default 24 hours.
	ReadAhead time.Duration
	// StateCache is how many customer states each partition keeps in
	// memory between batches, encoded as in Redis (written through to it).
	// Default 20000; negative disables the cache.
	StateCache int
	// MarkInterval is how often watermark marks are published. Default 1s.
	MarkInterval time.Duration
	// BatchSize and BatchWait bound one processing batch. Defaults 5000 and 20ms.
	BatchSize int
	BatchWait time.Duration
	// CommitInterval is the least time between two offset commits of a
	// partition; an idle partition or one being left commits at once.
	// Default 1s.
	CommitInterval time.Duration
	// DrainTimeout bounds how long a batch already fetched may take to be
	// finished and committed after shutdown or revocation. Default 5s.
	DrainTimeout time.Duration
	// LagInterval is how often consumer lag, pending timers and stalled
	// source partitions are published. Default 10s.
	LagInterval time.Duration
	// StallTimeout: a source partition with unread messages from which
	// nothing was read for this long is reported stalled. Default 1 minute.
	StallTimeout time.Duration
	// Now is the wall clock (default time.Now); tests may replace it.
	Now    func() time.Time
	Logger *slog.Logger
	// Holdout is the share (0 to 1) of customers, chosen by a stable hash of
	// their id, whose alerts carry data.holdout: true and notify nobody.
	Holdout float64
	// OnAlert, if set, sees every alert after it was produced.
	OnAlert func(alerts.Alert)
	// KeyPrefix of the Redis keys. Default "cw".
	KeyPrefix string
	// Metrics receives the processor's metrics; nil creates a fresh set.
	Metrics *metrics.Set
	// ChurnInactivity is how long without any event makes a customer
	// churned, for the retention KPIs. Default 180 days.
	ChurnInactivity time.Duration
	// KPIInterval is how often the retention KPIs are recomputed. Default 1 minute.
	KPIInterval time.Duration
}

// DefaultSources are the source topics of the contract.
func DefaultSources() map[string]event.Type {
	return map[string]event.Type{
		"purchases": event.Purchase, "support-tickets": event.SupportTicket, "usage": event.Usage,
		"customers": event.Customer, "feedback": event.Feedback,
	}
}

func (c *Config) setDefaults() {
	c.Kafka = c.kafka()
	c.Brokers = c.Kafka.Brokers
	if c.Group == "" {
		c.Group = "churnwatch"
	}
	if c.Sources == nil {
		c.Sources = DefaultSources()
	}
	if c.InternalTopic == "" {
		c.InternalTopic = "churnwatch-events"
	}
	if c.InternalPartitions == 0 {
		c.InternalPartitions = 12
	}
	if c.AlertsTopic == "" {
		c.AlertsTopic = "churn-alerts"
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "churn-dlq"
	}
	if c.SourcePartitions == 0 {
		c.SourcePartitions = 3
	}
	if c.Lateness == 0 {
		c.Lateness = 5 * time.Minute
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = 24 * time.Hour
	}
	if c.StateCache == 0 {
		c.StateCache = 20000
	}
	if c.MarkInterval == 0 {
		c.MarkInterval = time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.BatchWait == 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	if c.InternalRetention == 0 {
		c.InternalRetention = 7 * 24 * time.Hour
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 5 * time.Second
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.LagInterval == 0 {
		c.LagInterval = 10 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "cw"
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	if c.ChurnInactivity == 0 {
		c.ChurnInactivity = 180 * 24 * time.Hour
	}
	if c.KPIInterval == 0 {
		c.KPIInterval = time.Minute
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if err := c.kafka().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Lateness < 0 {
		errs = append(errs, fmt.Errorf("lateness %s: must not be negative", c.Lateness))
	}
	if c.Holdout < 0 || c.Holdout > 1 {
		errs = append(errs, fmt.Errorf("holdout %g: must be a share between 0 and 1, such as 0.1", c.Holdout))
	}
	if c.ChurnInactivity < 0 || c.KPIInterval < 0 {
		errs = append(errs, fmt.Errorf("churn inactivity %s, KPI interval %s: must not be negative", c.ChurnInactivity, c.KPIInterval))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: must be at least 1 (0 takes the default)", c.BatchSize))
	}
	for t, typ := range c.Sources {
		if t == c.InternalTopic || t == c.AlertsTopic || t == c.DLQTopic {
			errs = append(errs, fmt.Errorf("source topic %s: is also used as an output topic", t))
		}
		if typ == event.Unknown && t == "" {
			errs = append(errs, errors.New("source topics: empty topic name"))
		}
	}
	return errors.Join(errs...)
}

// kafka is Kafka with Brokers filled in from Brokers.
func (c *Config) kafka() kafkaconn.Conn {
	k := c.Kafka
	if len(k.Brokers) == 0 {
		k.Brokers = c.Brokers
	}
	return k
}

func (c *Config) replication() int16 {
	if c.Replication <= 0 {
		return -1
	}
	return int16(c.Replication)
}
