package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/backoff"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
)

// testCrash, set only by tests, is asked at points of a step whether the
// process should die there: the partition stops at once, committing nothing.
var testCrash func(point string) bool

var errCrashed = errors.New("simulated crash")

func crashAt(point string) error {
	if testCrash != nil && testCrash(point) {
		return errCrashed
	}
	return nil
}

// maxDuePerStep bounds the timers one step fires; more wait for the next.
const maxDuePerStep = 20000

// While a partition is far behind its end (a backfill, a restart after a
// pause), its batches grow up to catchUp.wait and catchUp.batch messages,
// less when the partitions of this process would together hold more than
// catchUp.budget messages (a message read and decoded takes about 1 KB of
// memory, most of it garbage soon after):
// each customer's state is then loaded, advanced and written once for many
// of its events and window edges. Within 20,000 messages of the end,
// batches keep the configured bounds, so alerts of live traffic leave
// promptly.
//
// While catching up, a timer also fires only once the watermark is
// catchUp.slack past it. Its customer is advanced with the same result (the
// engine fires every timer at its own event time, before any later event),
// but most timers are then handled in the step of the customer's next event
// instead of a step of their own. The alerts of those timers leave later in
// wall-clock time, never with another time or id.
var catchUp = struct {
	batch, budget int
	wait, slack   time.Duration
	// on says whether partition, lag messages behind its end, catches up;
	// tests may replace it.
	on func(partition int, lag int64) bool
}{batch: 200000, budget: 400000, wait: 2 * time.Second, slack: 7 * 24 * time.Hour,
	on: func(_ int, lag int64) bool { return lag >= 20000 }}

// worker is the state stage.
type worker struct {
	cfg    *Config
	store  *redisstate.Store
	engine *engine.Engine
	alerts *sizedWriter
	owned  owned
}

func (w *worker) run(ctx context.Context, joined func(bool)) error {
	return runGroup(ctx, w.cfg.Kafka, w.cfg.Group, []string{w.cfg.InternalTopic}, w.cfg.Logger, joined, w.partition)
}

// chain is where a customer's events of a batch are: the first and last
// (indices into the batch's messages) and how many.
type chain struct{ first, last, n int32 }

func (w *worker) partition(ctx context.Context, gen *kafka.Generation, topic string, partition int, offset int64) {
	log := w.cfg.Logger.With("stage", "state", "partition", partition)
	w.owned.set(partition, true)
	defer w.owned.set(partition, false)
	m := newMarks()
	stored := false // a watermark record was in Redis
	if err := backoff.Retry(ctx, log, w.cfg.Metrics.Errors, "read watermark", func() error {
		b, err := w.store.Watermark(ctx, partition)
		if err != nil || b == nil {
			return err
		}
		stored = true
		m, err = decodeMarks(b)
		return err
	}); err != nil {
		return
	}
	if stored && offset > m.Next && m.Next > 0 || !stored && offset > 0 {
		// Redis holds less than was committed: it lost writes it had
		// acknowledged (a snapshot restored, a replica promoted, a flush).
		log.Error("Redis is behind the committed offset of the internal topic: state lost acknowledged writes",
			"committed", offset, "redis", m.Next)
		m.loose = true
	}
	// Without a record nothing is known of the forwarding sessions whose
	// events are read from here on, unless the partition is read from
	// its very first offset: every session's chain then starts in it.
	fromStart := !stored && offset < 0
	m.loose = m.loose || !stored
	rd, err := newReader(w.cfg.Kafka, topic, partition, offset)
	if err != nil {
		log.Error("open reader", "err", err)
		return
	}
	defer rd.Close()
	var buf []kafka.Message
	more, crashed := false, false
	var lastEvents time.Time // when a batch last held events
	cache := newStateCache(w.cfg.StateCache, w.engine)
	part := w.store.Partition(partition)
	cm := newCommitter(gen, topic, partition, w.cfg.CommitInterval)
	defer func() {
		if !crashed {
			cm.leave(ctx, w.cfg.DrainTimeout, log)
		}
	}()
	for {
		idle := 250 * time.Millisecond
		if more {
			idle = time.Millisecond
		}
		size, wait, slack := w.cfg.BatchSize, w.cfg.BatchWait, time.Duration(0)
		if catchUp.on(partition, rd.Lag()) {
			size, wait, slack = max(size, min(catchUp.batch, catchUp.budget/max(1, w.owned.count()))), max(wait, catchUp.wait), catchUp.slack
		}
		buf, err = fetchBatch(ctx, rd, size, wait, idle, buf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("fetch failed", "err", err)
			continue
		}
		if len(buf) == 0 && !more {
			if err := cm.flush(ctx); err != nil {
				return
			}
			continue
		}
		if fromStart && len(buf) > 0 {
			fromStart, m.loose = false, buf[0].Offset != 0
		}
		// A batch that was fetched is finished and committed even when ctx
		// ends meanwhile (shutdown, revocation), within DrainTimeout.
		dctx, dcancel := drainContext(ctx, w.cfg.DrainTimeout)
		err := backoff.Retry(dctx, log, w.cfg.Metrics.Errors, "process batch", func() error {
			var err error
			more, err = w.step(dctx, log, partition, part, &m, cache, buf, slack)
			if errors.Is(err, errCrashed) {
				crashed = true
				return nil
			}
			return err
		})
		if err == nil && !crashed && len(buf) > 0 {
			// Watermark marks keep arriving on a partition without events:
			// once it had none for a commit interval, each batch of marks
			// is committed at once, so that the lag of a quiet partition
			// reads 0.
			quiet := onlyMarks(buf)
			if !quiet {
				lastEvents = time.Now()
			}
			err = cm.commit(dctx, buf[len(buf)-1].Offset+1, quiet && time.Since(lastEvents) >= w.cfg.CommitInterval)
		}
		dcancel()
		if err != nil || crashed || ctx.Err() != nil {
			return
		}
	}
}

// step processes one batch of one internal partition; more reports that
// further timers were already due. Timers fire when the watermark is slack
// past them. It may run again on the same batch after a failure: everything
// it writes is idempotent.
func (w *worker) step(ctx context.Context, log *slog.Logger, partition int, part *redisstate.Partition, m *marks, cache *stateCache, msgs []kafka.Message, slack time.Duration) (more bool, err error) {
	applied, synced := maps.Clone(m.Applied), maps.Clone(m.synced) // to restore should the step fail
	defer func() {
		if err != nil {
			cache.reset()
			m.Applied, m.synced = applied, synced
		}
	}()
	// For each customer the first of its events in the batch and a chain
	// through the rest (next, by message index), in offset order: no list
	// per customer to grow, and each event is decoded once, into the
	// customer's pending events.
	next := make([]int32, len(msgs))
	var dropped map[string]int // internal events not taken, by why (marks.accept)
	byCustomer := make(map[string]chain, len(msgs)/4+1)
	for i := range msgs {
		msg := &msgs[i]
		if isMark(msg) {
			rec, err := decodeMarks(msg.Value)
			if err != nil {
				log.Error("skipping undecodable watermark record", "offset", msg.Offset, "err", err)
				continue
			}
			m.observe(rec)
			continue
		}
		o, id, err := event.Peek(msg.Value)
		if err != nil {
			log.Error("skipping undecodable internal event", "offset", msg.Offset, "err", err)
			continue
		}
		if why, ok := m.accept(o); !ok {
			if dropped == nil {
				dropped = map[string]int{}
			}
			dropped[why]++
			continue
		}
		j := int32(i)
		next[j] = -1
		if ch, ok := byCustomer[id]; ok {
			next[ch.last] = j
			byCustomer[id] = chain{ch.first, j, ch.n + 1}
		} else {
			byCustomer[id] = chain{j, j, 1}
		}
	}
	if len(msgs) > 0 {
		m.Next = msgs[len(msgs)-1].Offset + 1
	}
	began := time.Now()
	wm := m.watermark(w.cfg.Lateness)
	if !wm.IsZero() {
		w.cfg.Metrics.WatermarkDelay.WithLabelValues(strconv.Itoa(partition)).Set(w.cfg.Now().Sub(wm).Seconds())
	}
	ids := make([]string, 0, len(byCustomer))
	for id := range byCustomer {
		ids = append(ids, id)
	}
	var fired map[string]int64 // customers whose timer fired → its due time
	if !wm.IsZero() {
		due, err := part.Due(ctx, wm.Add(-slack), maxDuePerStep)
		if err != nil {
			return false, err
		}
		more = len(due) == maxDuePerStep
		w.cfg.Metrics.TimersFired.Add(float64(len(due)))
		fired = make(map[string]int64, len(due))
		for _, d := range due {
			fired[d.ID] = d.At
			if _, ok := byCustomer[d.ID]; !ok {
				ids = append(ids, d.ID)
			}
		}
	}
	states, err := cache.load(ctx, part, ids)
	if err != nil {
		return false, err
	}
	batch := redisstate.Batch{Timers: make([]redisstate.TimerMove, 0, len(ids)), Watermark: m.encode(),
		Counters: &redisstate.Counters{}, States: make([]*state.Customer, 0, len(ids))}
	batch.Clock = wm
	emit := func(a alerts.Alert) {
		a.Holdout = alerts.InHoldout(a.CustomerID, w.cfg.Holdout)
		batch.Alerts = append(batch.Alerts, a)
	}
	for _, id := range ids {
		cs := states[id]
		c := cs.c
		spend, ranked := c.Spend365(), c.Offset >= 0 && !c.Deleted
		facts := redisstate.FactsOf(c)
		if ch, ok := byCustomer[id]; ok {
			c.Grow(int(ch.n))
			for j := ch.first; j >= 0; j = next[j] {
				e, err := event.DecodeBinary(msgs[j].Value)
				if err != nil {
					log.Error("skipping undecodable internal event", "offset", msgs[j].Offset, "err", err)
					continue
				}
				c.Receive(e, msgs[j].Offset)
			}
		}
		if !wm.IsZero() {
			if err := w.engine.Advance(c, wm, emit); err != nil {
				log.Error("rule evaluation failed", "customer", id, "err", err)
			}
		}
		batch.Counters.Spend(spend, ranked, c.Spend365(), !c.Deleted)
		batch.Counters.Facts(facts, redisstate.FactsOf(c))
		batch.States = append(batch.States, c)
		old := cs.due
		if at, ok := fired[id]; ok {
			old = at // where the timer is, should the rules have moved it meanwhile
		}
		batch.Timers = append(batch.Timers, redisstate.TimerMove{ID: id, Old: old, New: unixMilli(w.engine.NextDue(c))})
	}
	if len(batch.Alerts) > 0 {
		if err := w.produce(ctx, batch.Alerts); err != nil {
			return false, err
		}
		if err := crashAt("after-produce"); err != nil {
			return false, err
		}
	}
	if err := part.Write(ctx, &batch); err != nil {
		return false, err
	}
	cache.keep(&batch)
	if err := crashAt("after-write"); err != nil {
		return false, err
	}
	mt := w.cfg.Metrics
	mt.StatesWritten.Add(float64(len(batch.States)))
	for why, n := range dropped {
		mt.InternalDropped.WithLabelValues(why).Add(float64(n))
	}
	wall := w.cfg.Now()
	for _, a := range batch.Alerts {
		mt.Alerts.WithLabelValues(a.Rule, string(a.Status)).Inc()
		mt.EventToAlertLag.Observe(wall.Sub(a.Time).Seconds())
		if w.cfg.OnAlert != nil {
			w.cfg.OnAlert(a)
		}
	}
	mt.BatchSeconds.WithLabelValues("state").Observe(time.Since(began).Seconds())
	return more, nil
}

// produce writes alerts to the alert topic and waits for all replicas.
func (w *worker) produce(ctx context.Context, as []alerts.Alert) error {
	msgs := make([]kafka.Message, len(as))
	for i := range as {
		v, err := as[i].MarshalCloudEvent()
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", as[i].EventID(), err)
		}
		msgs[i] = kafka.Message{
			Key:     []byte(as[i].CustomerID),
			Value:   v,
			Headers: []kafka.Header{{Key: "content-type", Value: []byte(alerts.ContentType)}},
		}
	}
	if err := w.alerts.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d alerts: %w", len(msgs), summarize(err))
	}
	return nil
}

// unixMilli is the due time t as a timer holds it: Unix ms, at least 1
// (events are from 1970 on), 0 for the zero time (no timer). A timer due
// at the epoch itself fires a millisecond later: the engine still advances
// the customer to the exact instant.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(1, t.UnixMilli())
}

func onlyMarks(msgs []kafka.Message) bool {
	for i := range msgs {
		if !isMark(&msgs[i]) {
			return false
		}
	}
	return true
}

func isMark(m *kafka.Message) bool {
	for _, h := range m.Headers {
		if h.Key == markHeader {
			return true
		}
	}
	return false
}

// customerJSON is the admin API's view of a customer, with the reasons of
// its risk score.
func customerJSON(c *state.Customer, reasons []string) ([]byte, error) {
	v := c.View()
	type active struct {
		Rule    string    `json:"rule"`
		Since   time.Time `json:"since"`
		AlertID string    `json:"alert_id"`
	}
	act := make([]active, len(c.Active))
	for i, a := range c.Active {
		act[i] = active{a.Rule, a.Since, a.AlertID}
	}
	return json.Marshal(map[string]any{
		"customer_id": c.ID, "as_of": c.AsOf, "first_seen": c.FirstSeen,
		"profile": v.Customer, "purchases": v.Purchases, "tickets": v.Tickets,
		"usage": v.Usage, "feedback": v.Feedback, "segment": c.Segment,
		"risk_score": c.Risk, "reasons": reasons, "active_alerts": act,
		"pending_events": len(c.Pending),
	})
}
