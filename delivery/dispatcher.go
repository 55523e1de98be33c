// Package delivery is the webhook dispatcher: it reads the alert topic in
// its own consumer group (a slow CRM never slows processing), decides per
// alert event whether anyone is notified (endpoint filters, holdout,
// silences, contact caps), keeps every pending delivery and its retry
// schedule in Redis (a restart loses none), and sends signed attempts until
// a 2xx, a refusal or the end of the schedule, after which the delivery is
// kept as a dead letter for inspection and replay.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/backoff"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/webhook"
)

// Config configures a Dispatcher.
type Config struct {
	// Brokers are the bootstrap brokers, reached in plaintext unless Kafka
	// says otherwise.
	Brokers []string
	// Kafka is how the alert reader connects: brokers, TLS and SASL. Its
	// Brokers default to Brokers.
	Kafka       kafkaconn.Conn
	Group       string // consumer group; default "churnwatch-webhooks"
	AlertsTopic string // default "churn-alerts"
	Webhooks    *webhook.Config
	// Absence reports whether a rule fires on the passage of time (an
	// absence clause or a time window): its firing notifications wait while
	// the watermark is stalled. Nil: no rule does.
	Absence func(rule string) bool
	// Watermark returns the processor's event-time watermark (zero when
	// none is known yet). Nil turns the stall guard off.
	Watermark func(ctx context.Context) (time.Time, error)
	// Now is the wall clock; tests inject one to walk through the retry
	// schedule. Default time.Now.
	Now func() time.Time
	// Poll is how often due deliveries are looked for. Default 1s.
	Poll time.Duration
	// Hold is how long a notification held by the stall guard waits before
	// the guard looks again. Default 30s.
	Hold time.Duration
	// Concurrency is how many attempts per endpoint may be in flight. Default 4.
	Concurrency int
	HTTP        *http.Client // default: webhook.NewHTTPClient(Webhooks.DenyPrivate)
	Seed        uint64       // of the retry jitter; 0 picks one
	KeyPrefix   string       // of the Redis keys; default "cw"
	Logger      *slog.Logger
	Metrics     *metrics.Set // nil creates a fresh set
}

func (c *Config) setDefaults() {
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = c.Brokers
	}
	if c.HTTP == nil && c.Webhooks != nil {
		c.HTTP = webhook.NewHTTPClient(c.Webhooks.DenyPrivate)
	}
	if c.Group == "" {
		c.Group = "churnwatch-webhooks"
	}
	if c.AlertsTopic == "" {
		c.AlertsTopic = "churn-alerts"
	}
	if c.Absence == nil {
		c.Absence = func(string) bool { return false }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Hold <= 0 {
		c.Hold = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Dispatcher delivers alerts to the configured endpoints.
type Dispatcher struct {
	cfg      Config
	store    *Store
	client   *webhook.Client
	limiters map[string]*rate.Limiter
	mu       sync.Mutex // guards rnd
	rnd      *rand.Rand
}

// New returns a dispatcher over rdb.
func New(cfg Config, rdb redis.UniversalClient) (*Dispatcher, error) {
	cfg.setDefaults()
	if cfg.Webhooks == nil || len(cfg.Webhooks.Endpoints) == 0 {
		return nil, errors.New("webhooks: no endpoint configured")
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{cfg: cfg, store: NewStore(rdb, cfg.KeyPrefix), limiters: map[string]*rate.Limiter{},
		client: &webhook.Client{HTTP: cfg.HTTP, Now: cfg.Now}, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed>>1|1))}
	for _, ep := range cfg.Webhooks.Endpoints {
		if ep.RateLimit > 0 {
			d.limiters[ep.Name] = rate.NewLimiter(rate.Limit(ep.RateLimit), max(ep.Burst, 1))
		}
	}
	return d, nil
}

// Store returns the dispatcher's Redis store (dead letters, silences, …).
func (d *Dispatcher) Store() *Store { return d.store }

// Run consumes the alert topic and delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.consume(gctx) })
	for _, ep := range d.cfg.Webhooks.Endpoints {
		g.Go(func() error { return d.deliverLoop(gctx, ep) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// errBadAlert marks a message of the alert topic that is not an alert.
var errBadAlert = errors.New("not an alert CloudEvent")

func (d *Dispatcher) consume(ctx context.Context) error {
	log := d.cfg.Logger
	r := d.cfg.Kafka.Reader(kafka.ReaderConfig{
		GroupID: d.cfg.Group, Topic: d.cfg.AlertsTopic,
		StartOffset: kafka.FirstOffset, MaxWait: 250 * time.Millisecond, CommitInterval: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("alert reader: " + fmt.Sprintf(msg, args...))
		}),
	})
	defer r.Close()
	log.Info("webhook dispatcher reading alerts", "topic", d.cfg.AlertsTopic, "group", d.cfg.Group, "endpoints", len(d.cfg.Webhooks.Endpoints))
	wait := 100 * time.Millisecond
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.cfg.Metrics.Errors.WithLabelValues("read alerts").Inc()
			log.Warn("read alerts failed; retrying", "err", kafkaconn.Explain(err), "backoff", wait)
			if !backoff.Sleep(ctx, &wait) {
				return nil
			}
			continue
		}
		wait = 100 * time.Millisecond
		err = backoff.Retry(ctx, log, d.cfg.Metrics.Errors, "record notification", func() error {
			err := d.Offer(ctx, m.Value)
			if errors.Is(err, errBadAlert) {
				log.Error("skipping a message of the alert topic", "partition", m.Partition, "offset", m.Offset, "err", err)
				return nil
			}
			return err
		})
		if err != nil {
			return nil // ctx ended
		}
		if err := r.CommitMessages(ctx, m); err != nil && ctx.Err() == nil {
			log.Warn("commit alert offset", "err", err) // the decision is recorded: a redelivery changes nothing
		}
	}
}

// Offer decides what becomes of one message of the alert topic: nothing
// (no endpoint wants it), a recorded suppression, or one pending delivery
// per matching endpoint. Offering the same message again changes nothing.
func (d *Dispatcher) Offer(ctx context.Context, value []byte) error {
	ev, err := alerts.ParseCloudEvent(value)
	if err != nil || ev.Data == nil || ev.ID == "" {
		if err == nil {
			err = errors.New("no id or data")
		}
		return fmt.Errorf("%w: %v", errBadAlert, err)
	}
	a := ev.Data
	var names []string
	for _, ep := range d.cfg.Webhooks.Endpoints {
		if ep.Filter.Match(a.Rule, a.Severity, string(a.Status)) {
			names = append(names, ep.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	now := d.cfg.Now()
	n := &Notice{EventID: ev.ID, AlertID: a.AlertID, Rule: a.Rule, Customer: a.CustomerID, Status: string(a.Status),
		Body: value, Absence: d.cfg.Absence(a.Rule)}
	if a.Holdout {
		n.Reason, n.Detail = "holdout", "the customer is in the holdout group"
	} else if sl, err := d.silenced(ctx, a.CustomerID, a.Rule, now); err != nil {
		return err
	} else if sl != nil {
		n.Reason, n.Detail = "silenced", silenceDetail(sl)
	}
	dec, err := d.store.Accept(ctx, n, names, d.cfg.Webhooks.Caps, now)
	if err != nil {
		return err
	}
	if !dec.Notify && !dec.Duplicate {
		d.cfg.Metrics.WebhookSuppressed.WithLabelValues(dec.Reason).Inc()
		d.cfg.Logger.Info("notification suppressed", "event", ev.ID, "rule", a.Rule, "customer", a.CustomerID, "reason", dec.Reason)
	}
	return nil
}

func (d *Dispatcher) silenced(ctx context.Context, customer, rule string, now time.Time) (*webhook.Silence, error) {
	list, err := d.store.Silences(ctx)
	if err != nil {
		return nil, err
	}
	return webhook.Silenced(list, customer, rule, now), nil
}

func silenceDetail(sl *webhook.Silence) string {
	return fmt.Sprintf("silence %s until %s: %s", sl.ID, sl.Until.Format(time.RFC3339), sl.Comment)
}

func (d *Dispatcher) deliverLoop(ctx context.Context, ep *webhook.Endpoint) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	wait := d.cfg.Poll
	for {
		if err := d.deliverDue(ctx, ep); err != nil && ctx.Err() == nil {
			d.cfg.Metrics.Errors.WithLabelValues("deliver webhooks").Inc()
			d.cfg.Logger.Warn("webhook deliveries paused", "endpoint", ep.Name, "err", err, "backoff", wait)
			if !backoff.Sleep(ctx, &wait) {
				return nil
			}
			continue
		}
		wait = d.cfg.Poll
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// deliverDue attempts every delivery of ep that is due now.
func (d *Dispatcher) deliverDue(ctx context.Context, ep *webhook.Endpoint) error {
	pending, dead, err := d.store.Counts(ctx, ep.Name)
	if err != nil {
		return err
	}
	d.cfg.Metrics.WebhookPending.WithLabelValues(ep.Name).Set(float64(pending))
	d.cfg.Metrics.WebhookDead.WithLabelValues(ep.Name).Set(float64(dead))
	disabled, err := d.store.Disabled(ctx)
	if err != nil {
		return err
	}
	if _, off := disabled[ep.Name]; off || pending == 0 {
		return nil
	}
	guard := &stallGuard{d: d}
	lease := ep.Timeout + 30*time.Second
	limit := 8 * d.cfg.Concurrency
	for ctx.Err() == nil {
		jobs, err := d.store.Claim(ctx, ep.Name, d.cfg.Now(), lease, limit)
		if err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(d.cfg.Concurrency)
		for _, j := range jobs {
			g.Go(func() error { return d.attempt(gctx, ep, j, guard) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if len(jobs) < limit {
			return nil
		}
		if off, err := d.store.Disabled(ctx); err != nil || off[ep.Name] != "" {
			return err
		}
	}
	return nil
}

// stallGuard reads the watermark at most once per pass.
type stallGuard struct {
	d       *Dispatcher
	once    sync.Once
	stalled bool
	lag     time.Duration
}

func (s *stallGuard) check(ctx context.Context) (bool, time.Duration) {
	s.once.Do(func() {
		cfg := s.d.cfg
		if cfg.Watermark == nil || cfg.Webhooks.StallAfter < 0 {
			return
		}
		wm, err := cfg.Watermark(ctx)
		if err != nil {
			// Not knowing is treated as stalled: the notification waits.
			s.stalled = true
			cfg.Logger.Warn("stall guard cannot read the watermark; absence notifications wait", "err", err)
			return
		}
		if !wm.IsZero() {
			s.lag = cfg.Now().Sub(wm)
			s.stalled = s.lag > cfg.Webhooks.StallAfter
		}
	})
	return s.stalled, s.lag
}

// attempt sends one delivery and records the outcome. An error means the
// outcome could not be recorded; the job's lease then makes it due again.
func (d *Dispatcher) attempt(ctx context.Context, ep *webhook.Endpoint, j *Job, guard *stallGuard) error {
	log := d.cfg.Logger.With("endpoint", ep.Name, "event", j.EventID)
	now := d.cfg.Now()
	if j.Absence && j.Status == string(alerts.Firing) {
		if stalled, lag := guard.check(ctx); stalled {
			d.cfg.Metrics.WebhookHeld.Inc()
			log.Info("absence notification held: the watermark lags the wall clock", "lag", lag.Round(time.Second))
			return d.store.Retry(ctx, j, now.Add(d.cfg.Hold), false)
		}
	}
	sl, err := d.silenced(ctx, j.Customer, j.Rule, now)
	if err != nil {
		return err
	}
	if sl != nil {
		d.cfg.Metrics.WebhookSuppressed.WithLabelValues("silenced").Inc()
		return d.store.suppress(ctx, ep.Name, j, "silenced", silenceDetail(sl), now)
	}
	body, contentType, err := ep.Template.Render(j.Body, nil)
	if err != nil {
		j.DeadReason = "the template failed: " + err.Error()
		d.cfg.Metrics.WebhookAttempts.WithLabelValues(ep.Name, webhook.DeadLetter.String()).Inc()
		log.Error("delivery dead-lettered", "reason", j.DeadReason)
		return d.store.Dead(ctx, j, now)
	}
	if l := d.limiters[ep.Name]; l != nil {
		if err := l.Wait(ctx); err != nil {
			return d.store.Retry(ctx, j, now, false)
		}
	}
	res := d.client.Deliver(ctx, ep, webhook.Message{ID: j.EventID, ContentType: contentType, Body: body})
	now = d.cfg.Now()
	d.cfg.Metrics.WebhookAttempts.WithLabelValues(ep.Name, res.Outcome.String()).Inc()
	j.LastStatus = res.Status
	if res.Err != nil {
		j.LastError = res.Err.Error()
	}
	switch res.Outcome {
	case webhook.Delivered:
		log.Debug("delivered", "attempt", j.Attempt+1, "status", res.Status)
		return d.store.Delivered(ctx, j)
	case webhook.Disable:
		log.Error("endpoint answered 410 Gone: deliveries to it stop until it is enabled again (churnwatch webhooks enable "+ep.Name+")",
			"host", ep.Host())
		if err := d.store.Disable(ctx, ep.Name, fmt.Sprintf("answered 410 Gone at %s", now.UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		return d.store.Retry(ctx, j, now, false)
	case webhook.DeadLetter:
		j.Attempt++
		j.DeadReason = fmt.Sprintf("refused by the endpoint (HTTP %d)", res.Status)
		if res.Status == 0 {
			j.DeadReason = "the request could not be made: " + j.LastError
		}
		log.Warn("delivery dead-lettered", "reason", j.DeadReason)
		return d.store.Dead(ctx, j, now)
	}
	j.Attempt++
	d.mu.Lock()
	delay, ok := webhook.NextDelay(j.Attempt, res.RetryAfter, d.rnd)
	d.mu.Unlock()
	if !ok {
		j.DeadReason = fmt.Sprintf("no success after %d attempts", j.Attempt)
		log.Warn("delivery dead-lettered", "reason", j.DeadReason, "last_error", j.LastError)
		return d.store.Dead(ctx, j, now)
	}
	log.Info("delivery failed; will retry", "attempt", j.Attempt, "status", res.Status, "err", j.LastError, "in", delay.Round(time.Second))
	return d.store.Retry(ctx, j, now.Add(delay), true)
}
