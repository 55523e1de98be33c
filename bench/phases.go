package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

// running is a processor started by start.
type running struct {
	p      *processor.Processor
	cancel context.CancelFunc
	done   chan error
}

func start(ctx context.Context, cfg processor.Config, store *redisstate.Store) (*running, error) {
	p, err := processor.New(cfg, store, rules.Builtin())
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(pctx) }()
	return r, nil
}

func (r *running) stop() { r.cancel(); <-r.done }

// until polls cond every 5 ms for up to limit.
func (r *running) until(what string, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not reached within %s", what, limit)
		}
		select {
		case err := <-r.done:
			return fmt.Errorf("processor stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// drain waits until the processor's source group committed srcEnds, its
// state group committed the end of the internal topic and the watermark
// reached the wall clock (now, less the allowed lateness).
func (r *running) drain(ctx context.Context, adm *topics.Admin, group string, srcEnds map[string]map[int32]int64, store *redisstate.Store, now time.Time) error {
	const limit = 10 * time.Minute
	if err := r.until("source stage drained", limit, func() bool {
		ok, _ := adm.Committed(ctx, group+"-source", srcEnds)
		return ok
	}); err != nil {
		return err
	}
	internalEnds, err := adm.EndOffsets(ctx, "churnwatch-events")
	if err != nil {
		return err
	}
	if err := r.until("state stage drained", limit, func() bool {
		ok, _ := adm.Committed(ctx, group, internalEnds)
		return ok
	}); err != nil {
		return err
	}
	return r.until("watermark", limit, func() bool {
		wm, err := store.Clock(ctx)
		return err == nil && !wm.IsZero() && !wm.Before(now.Add(-10*time.Minute))
	})
}

// Latency offers live synthetic traffic at rate events/s for d and returns
// the p50 and p99 of event→alert latency: the time the alert record was
// written to the alert topic minus the alert's event time (for an alert an
// event caused, that event's occurred_at, which is when it was sent). The
// processor runs with no allowed lateness and 10 ms watermark marks: with
// the default 5 minutes, an event is applied only once the watermark is 5
// minutes past it, by design.
func Latency(ctx context.Context, customers int, rate float64, d time.Duration, prof Profiler) (p50, p99 time.Duration, n int, err error) {
	e, err := newEnv(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer e.close()
	cfg := processor.Config{Brokers: e.brokers, Group: "latency", CreateTopics: true, InternalPartitions: 4,
		Lateness: time.Nanosecond, MarkInterval: 10 * time.Millisecond, BatchWait: 2 * time.Millisecond, Logger: quiet()}
	adm, err := topics.NewAdmin(e.brokers)
	if err != nil {
		return 0, 0, 0, err
	}
	defer adm.Close()
	if _, err := adm.Ensure(ctx, processor.TopicSpecs(cfg)); err != nil {
		return 0, 0, 0, err
	}
	r, err := start(ctx, cfg, redisstate.New(e.rdb, ""))
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.stop()
	if err := r.until("consumer groups joined", time.Minute, func() bool { return r.p.Ready(ctx) == nil }); err != nil {
		return 0, 0, 0, err
	}
	// kafka-go clears room for BatchSize messages per batch: the live
	// batches are small, and a large BatchSize would make the load
	// generator compete with the processor for the CPU.
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond,
		BatchSize: 50, Async: true, Transport: &kafka.Transport{}}
	stop := prof.start()
	began := time.Now()
	lctx, cancel := context.WithTimeout(ctx, d)
	err = synth.Live(lctx, synth.Config{Customers: customers, Seed: 2}, rate, time.Now, func(m synth.Message) error {
		return w.WriteMessages(lctx, kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value})
	})
	cancel()
	w.Close()
	if err != nil {
		stop()
		return 0, 0, 0, err
	}
	time.Sleep(time.Second) // the last events' alerts
	stop()
	var lat []time.Duration
	msgs, err := adm.ReadAll(ctx, e.brokers, "churn-alerts")
	if err != nil {
		return 0, 0, 0, err
	}
	for _, m := range msgs {
		ce, err := alerts.ParseCloudEvent(m.Value)
		if err != nil || ce.Data == nil || ce.Data.Time.Before(began) {
			continue // history, if any, is not live traffic
		}
		lat = append(lat, m.Time.Sub(ce.Data.Time))
	}
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("no alert from live traffic in %s", d)
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], len(lat), nil
}

// Timers gives n VIP customers one purchase each, lets the processor
// apply them, then moves the wall clock 181 days on: every customer's
// absence deadline (vip-no-purchase-180d) and window edges are due at
// once. It returns the time until all n timers fired and their n alerts
// were produced.
func Timers(ctx context.Context, n int, prof Profiler) (time.Duration, error) {
	e, err := newEnv(ctx)
	if err != nil {
		return 0, err
	}
	defer e.close()
	base := time.Now().UTC().Add(-400 * 24 * time.Hour).Truncate(time.Second)
	var clock atomic.Int64
	clock.Store(base.Add(2 * time.Hour).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	cfg := processor.Config{Brokers: e.brokers, Group: "timers", CreateTopics: true, InternalPartitions: 4,
		MarkInterval: 50 * time.Millisecond, Now: now, Logger: quiet()}
	adm, err := topics.NewAdmin(e.brokers)
	if err != nil {
		return 0, err
	}
	defer adm.Close()
	if _, err := adm.Ensure(ctx, processor.TopicSpecs(cfg)); err != nil {
		return 0, err
	}
	msgs := make([]synth.Message, 0, 2*n)
	for i := range n {
		id := synth.CustomerID(i)
		msgs = append(msgs,
			synth.Message{Topic: "customers", Key: []byte(id), Value: eventJSON("p-"+id, id, base, "tier", "vip")},
			synth.Message{Topic: "purchases", Key: []byte(id), Value: eventJSON("o-"+id, id, base.Add(time.Hour), "amount", 10)})
	}
	if err := write(ctx, e.brokers, msgs); err != nil {
		return 0, err
	}
	r, err := start(ctx, cfg, redisstate.New(e.rdb, ""))
	if err != nil {
		return 0, err
	}
	defer r.stop()
	m := r.p.Metrics()
	store := r.p.Store()
	// Every event applied (a customer's profile alone already gives it a
	// timer: a purchase still on its way when the clock moves would be
	// applied as an event, its alert fired without a timer), and each
	// customer holds a timer (its next window edge).
	srcEnds, err := adm.EndOffsets(ctx, synth.Topics()...)
	if err != nil {
		return 0, err
	}
	if err := r.drain(ctx, adm, cfg.Group, srcEnds, store, now()); err != nil {
		return 0, err
	}
	if err := r.until("every customer applied", 10*time.Minute, func() bool {
		total := int64(0)
		for part := range cfg.InternalPartitions {
			k, err := store.PendingTimers(ctx, part)
			if err != nil {
				return false
			}
			total += k
		}
		return total == int64(n)
	}); err != nil {
		return 0, err
	}
	fired := testutil.ToFloat64(m.TimersFired)
	stop := prof.start()
	defer stop()
	t0 := time.Now()
	clock.Store(base.Add(182 * 24 * time.Hour).UnixNano())
	if err := r.until(strconv.Itoa(n)+" timers fired", 10*time.Minute, func() bool {
		return testutil.ToFloat64(m.TimersFired)-fired >= float64(n) &&
			testutil.ToFloat64(m.Alerts.WithLabelValues("vip-no-purchase-180d", "firing")) >= float64(n)
	}); err != nil {
		return 0, fmt.Errorf("%w (%g fired, %g alerts)", err, testutil.ToFloat64(m.TimersFired)-fired,
			testutil.ToFloat64(m.Alerts.WithLabelValues("vip-no-purchase-180d", "firing")))
	}
	return time.Since(t0), nil
}

func eventJSON(id, customer string, at time.Time, fields ...any) []byte {
	m := map[string]any{"id": id, "customer_id": customer, "occurred_at": at.Format(time.RFC3339)}
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i].(string)] = fields[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// Restart lets a processor apply n customers (each a VIP with one
// purchase) and stop, returns the Redis memory that added per customer,
// then starts a processor cold and returns the time from its start until
// its first event is applied and written.
func Restart(ctx context.Context, n int) (d time.Duration, bytesPerCustomer float64, err error) {
	e, err := newEnv(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer e.close()
	now := time.Now().UTC().Truncate(time.Second)
	cfg := processor.Config{Brokers: e.brokers, Group: "restart", CreateTopics: true, InternalPartitions: 4, Logger: quiet()}
	adm, err := topics.NewAdmin(e.brokers)
	if err != nil {
		return 0, 0, err
	}
	defer adm.Close()
	if _, err := adm.Ensure(ctx, processor.TopicSpecs(cfg)); err != nil {
		return 0, 0, err
	}
	// The population: every customer a VIP profile and one purchase, on
	// the source topics, applied by the processor itself, so that Redis
	// holds all it keeps of a customer (state, timer, spend ranking, KPI
	// facts).
	msgs := make([]synth.Message, 0, 2*n)
	for i := range n {
		id := synth.CustomerID(i)
		at := now.Add(-time.Duration(i%300) * 24 * time.Hour)
		msgs = append(msgs,
			synth.Message{Topic: "customers", Key: []byte(id), Value: eventJSON("p-"+id, id, at, "tier", "vip")},
			synth.Message{Topic: "purchases", Key: []byte(id), Value: eventJSON("o-"+id, id, at.Add(time.Hour), "amount", 10)})
	}
	if err := write(ctx, e.brokers, msgs); err != nil {
		return 0, 0, err
	}
	msgs = nil
	srcEnds, err := adm.EndOffsets(ctx, synth.Topics()...)
	if err != nil {
		return 0, 0, err
	}
	baseline, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return 0, 0, err
	}
	store := redisstate.New(e.rdb, "")
	first, err := start(ctx, cfg, store)
	if err != nil {
		return 0, 0, err
	}
	err = first.drain(ctx, adm, cfg.Group, srcEnds, store, now)
	first.stop()
	if err != nil {
		return 0, 0, err
	}
	used, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return 0, 0, err
	}
	bytesPerCustomer = float64(used-baseline) / float64(n)
	t0 := time.Now()
	r, err := start(ctx, cfg, store)
	if err != nil {
		return 0, 0, err
	}
	defer r.stop()
	id := synth.CustomerID(n + 1)
	if err := write(ctx, e.brokers, []synth.Message{{Topic: "purchases", Key: []byte(id), Value: eventJSON("first-"+id, id, now.Add(-10*time.Minute), "amount", 5)}}); err != nil {
		return 0, 0, err
	}
	if err := r.until("the first event applied", 5*time.Minute, func() bool {
		c, err := store.Customer(ctx, id)
		return err == nil && c != nil && c.Purchases.Count == 1
	}); err != nil {
		return 0, 0, err
	}
	return time.Since(t0), bytesPerCustomer, nil
}
