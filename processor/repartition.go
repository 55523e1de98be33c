package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/backoff"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/state"
	"github.com/churnwatch/churnwatch/topics"
)

// Dead-letter headers of contract §1.
const (
	HeaderError     = "churnwatch-error"
	HeaderTopic     = "churnwatch-source-topic"
	HeaderPartition = "churnwatch-source-partition"
	HeaderOffset    = "churnwatch-source-offset"
)

// progress is what the source stage knows of one assigned source partition.
type progress struct {
	next     int64     // next offset to read; <0 until known
	max      time.Time // highest occurred_at forwarded
	caughtUp bool      // next reached the end offset at the last check
	// lastRecord is the wall-clock time records last arrived (or the
	// partition was assigned); held is set while waitTurn holds it back.
	lastRecord time.Time
	held       bool
	stalled    bool // reported as stalled
}

// repartitioner is the source stage.
type repartitioner struct {
	cfg      *Config
	adm      *topics.Admin
	internal *sizedWriter
	// marks writes watermark marks, a single message per partition: its
	// batches need no room for more.
	marks *kafka.Writer
	dlq   *kafka.Writer

	// parts is the internal topic's partition count, the one of the
	// Redis layout: events are placed by state.Partition over it.
	parts int

	mu       sync.Mutex
	assigned map[source]*progress
}

func newRepartitioner(cfg *Config, adm *topics.Admin, internalPartitions int) *repartitioner {
	return &repartitioner{
		cfg:      cfg,
		adm:      adm,
		internal: newSizedWriter(cfg.Kafka, cfg.InternalTopic, &internalBalancer{internalPartitions}),
		marks:    newMarksWriter(cfg.Kafka, cfg.InternalTopic),
		dlq:      newDLQWriter(cfg.Kafka, cfg.DLQTopic),
		parts:    internalPartitions,
		assigned: make(map[source]*progress),
	}
}

func (r *repartitioner) close() {
	r.internal.Close()
	r.marks.Close()
	r.dlq.Close()
}

func (r *repartitioner) sourceTopics() []string {
	ts := make([]string, 0, len(r.cfg.Sources))
	for t := range r.cfg.Sources {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// sourceKey returns the event.SourceKey of a source partition, from the
// topic's current id. Two source topics whose keys collide would have the
// events of one taken for duplicates of the other's: that is refused (it
// stops when either topic is created again, with a new id).
func (r *repartitioner) sourceKey(ctx context.Context, topic string, partition int32) (uint64, error) {
	ids, err := r.adm.IDs(ctx, r.sourceTopics()...)
	if err != nil {
		return 0, err
	}
	id, ok := ids[topic]
	if !ok {
		return 0, fmt.Errorf("source topic %s not found", topic)
	}
	key := event.SourceKey(topic, id, partition)
	for t, other := range ids {
		if t != topic && uint32(event.SourceKey(t, other, partition)) == uint32(key) {
			return 0, fmt.Errorf("source topics %s and %s have the same origin hash: create either again", topic, t)
		}
	}
	return key, nil
}

// run consumes the source topics until ctx ends.
func (r *repartitioner) run(ctx context.Context, joined func(bool)) error {
	return runGroup(ctx, r.cfg.Kafka, r.cfg.Group+"-source", r.sourceTopics(), r.cfg.Logger, joined, r.partition)
}

func (r *repartitioner) partition(ctx context.Context, gen *kafka.Generation, topic string, partition int, offset int64) {
	log := r.cfg.Logger.With("topic", topic, "partition", partition)
	src := source{topic, int32(partition)}
	p := &progress{next: offset}
	var key uint64
	if err := backoff.Retry(ctx, log, r.cfg.Metrics.Errors, "read topic id", func() (err error) {
		key, err = r.sourceKey(ctx, topic, int32(partition))
		return err
	}); err != nil {
		return
	}
	if offset < 0 {
		if err := backoff.Retry(ctx, log, r.cfg.Metrics.Errors, "read start offset", func() error {
			so, err := r.adm.StartOffsets(ctx, topic)
			if err == nil {
				p.next = so[topic][int32(partition)]
			}
			return err
		}); err != nil {
			return
		}
	}
	r.mu.Lock()
	p.lastRecord = r.cfg.Now()
	r.assigned[src] = p
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.assigned, src)
		r.mu.Unlock()
	}()
	rd, err := newReader(r.cfg.Kafka, topic, partition, p.next)
	if err != nil {
		log.Error("open reader", "err", err)
		return
	}
	defer rd.Close()
	typ := r.cfg.Sources[topic]
	var (
		buf      []kafka.Message
		out, bad []kafka.Message
		counted  [event.Feedback + 1]int // valid events of the batch by type
	)
	m := r.cfg.Metrics
	batchTime := m.BatchSeconds.WithLabelValues("source")
	cm := newCommitter(gen, topic, partition, r.cfg.CommitInterval)
	defer cm.leave(ctx, r.cfg.DrainTimeout, log)
	// prev[i] is the offset of the event this session last sent to
	// internal partition i (event.Origin.Prev).
	prev := make([]int64, r.parts)
	for i := range prev {
		prev[i] = -1
	}
	for {
		if !r.waitTurn(ctx, p) {
			return
		}
		buf, err = fetchBatch(ctx, rd, r.cfg.BatchSize, r.cfg.BatchWait, 500*time.Millisecond, buf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("fetch failed", "err", err)
			continue
		}
		if len(buf) == 0 {
			if err := cm.flush(ctx); err != nil {
				return
			}
			continue
		}
		r.mu.Lock()
		p.lastRecord = r.cfg.Now()
		r.mu.Unlock()
		out, bad = out[:0], bad[:0]
		counted = [len(counted)]int{}
		// One arena per batch holds every key and value: two allocations per
		// batch instead of two per event. It is not reused, because the
		// writer may keep references until WriteMessages returns.
		arena := make([]byte, 0, 64*len(buf))
		var maxAt time.Time
		began := time.Now()
		now := r.cfg.Now()
		for i := range buf {
			msg := &buf[i]
			e, err := event.Decode(msg.Value, typ, now)
			if err != nil {
				bad = append(bad, deadLetter(msg, err))
				m.DeadLetters.WithLabelValues(topic, reasonLabel(err)).Inc()
				continue
			}
			counted[e.Type]++
			if e.OccurredAt.After(maxAt) {
				maxAt = e.OccurredAt
			}
			start := len(arena)
			arena = append(arena, e.CustomerID...)
			mid := len(arena)
			to := state.Partition(e.CustomerID, r.parts)
			arena = e.AppendBinary(arena, event.Origin{Source: key, Offset: msg.Offset, Prev: prev[to]})
			prev[to] = msg.Offset
			out = append(out, kafka.Message{Key: arena[start:mid:mid], Value: arena[mid:len(arena):len(arena)]})
		}
		// The batch is forwarded and committed even when ctx ends meanwhile,
		// within DrainTimeout.
		dctx, dcancel := drainContext(ctx, r.cfg.DrainTimeout)
		if !r.forward(dctx, log, bad, out) {
			dcancel()
			return
		}
		for t, n := range counted {
			if n > 0 {
				m.EventsIn.WithLabelValues(topic, event.Type(t).String()).Add(float64(n))
			}
		}
		batchTime.Observe(time.Since(began).Seconds())
		next := buf[len(buf)-1].Offset + 1
		r.mu.Lock()
		p.next = next
		if maxAt.After(p.max) {
			p.max = maxAt
		}
		r.mu.Unlock()
		err = cm.commit(dctx, next, false)
		dcancel()
		if err != nil || ctx.Err() != nil {
			return
		}
	}
}

// forward writes a batch's dead letters and internal messages; false when
// ctx ended first.
func (r *repartitioner) forward(ctx context.Context, log *slog.Logger, bad, out []kafka.Message) bool {
	if len(bad) > 0 {
		if backoff.Retry(ctx, log, r.cfg.Metrics.Errors, "write dead letters", func() error { return r.writeDeadLetters(ctx, bad) }) != nil {
			return false
		}
	}
	if len(out) > 0 {
		if backoff.Retry(ctx, log, r.cfg.Metrics.Errors, "write internal topic", func() error { return summarize(r.internal.WriteMessages(ctx, out...)) }) != nil {
			return false
		}
	}
	return true
}

// waitTurn holds a partition back while it is more than ReadAhead of event
// time ahead of the slowest partition this instance reads, the way Kafka
// Streams synchronises its inputs by timestamp. Reading further ahead could
// not move the watermark; it would only pile up events that wait in
// customer state. It returns false when ctx ends.
func (r *repartitioner) waitTurn(ctx context.Context, p *progress) bool {
	held := false
	for {
		r.mu.Lock()
		ahead := r.aheadOfSlowest(p)
		p.held = ahead
		if !ahead && held {
			p.lastRecord = r.cfg.Now() // time held back is not time stalled
		}
		r.mu.Unlock()
		if !ahead {
			return true
		}
		held = true
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// aheadOfSlowest reports whether p leads the slowest assigned partition by
// more than ReadAhead; r.mu is held.
func (r *repartitioner) aheadOfSlowest(p *progress) bool {
	if p.max.IsZero() || p.caughtUp {
		return false
	}
	now := r.cfg.Now()
	for _, q := range r.assigned {
		mark := q.max
		if q.caughtUp && now.After(mark) {
			mark = now
		}
		if p.max.Sub(mark) > r.cfg.ReadAhead {
			return true
		}
	}
	return false
}

// reasonLabel is the low-cardinality metric label of a validation error.
func reasonLabel(err error) string {
	r := err.Error()
	switch {
	case strings.HasPrefix(r, "invalid JSON"), strings.HasPrefix(r, "empty message"), strings.Contains(r, "nested deeper"):
		return "invalid_json"
	case strings.Contains(r, "UTF-8"), strings.Contains(r, "control characters"):
		return "invalid_text"
	case strings.Contains(r, "exceeds the limit"):
		return "too_large"
	case strings.HasPrefix(r, "missing"):
		return "missing_field"
	case strings.Contains(r, "after the current time"):
		return "future"
	}
	return "invalid_value"
}

// DLQMaxBytes is the max.message.bytes the dead-letter topic is created
// with and the most its writer puts in one request: a bad message as large
// as a source topic allows under Kafka's defaults (1 MiB), or one raised
// sixteenfold, is dead-lettered whole.
const DLQMaxBytes = 16 << 20

// truncatedKeep is how much of a value too large for the dead-letter topic
// is kept; HeaderTruncated then holds the value's original length.
const truncatedKeep = 64 << 10

// HeaderTruncated marks a dead letter whose value was cut to its first
// truncatedKeep bytes; the whole message stays at its source offset.
const HeaderTruncated = "churnwatch-truncated"

func newMarksWriter(conn kafkaconn.Conn, topic string) *kafka.Writer {
	w := newWriter(conn, topic, &internalBalancer{})
	w.BatchSize = 1
	return w
}

func newDLQWriter(conn kafkaconn.Conn, topic string) *kafka.Writer {
	w := newWriter(conn, topic, nil)
	w.BatchBytes = DLQMaxBytes
	return w
}

// writeDeadLetters writes dead letters. When the broker or the writer
// refuses a batch as too large (a dead-letter topic created with a smaller
// max.message.bytes, say), they are written one at a time, and one still
// too large is written with its value cut (HeaderTruncated): a bad message
// never holds its source partition back.
func (r *repartitioner) writeDeadLetters(ctx context.Context, bad []kafka.Message) error {
	err := r.dlq.WriteMessages(ctx, bad...)
	if err == nil || !tooLarge(err) {
		return summarize(err)
	}
	for _, m := range bad {
		err := r.dlq.WriteMessages(ctx, m)
		if tooLarge(err) {
			err = r.dlq.WriteMessages(ctx, truncated(m))
		}
		if err != nil {
			return summarize(err)
		}
	}
	return nil
}

func tooLarge(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if errors.Is(e, kafka.MessageSizeTooLarge) {
				return true
			}
		}
	}
	return errors.Is(err, kafka.MessageSizeTooLarge)
}

// truncated is m with its value cut to truncatedKeep bytes and its key to
// as much, marked with HeaderTruncated.
func truncated(m kafka.Message) kafka.Message {
	n := len(m.Value)
	m.Key = m.Key[:min(len(m.Key), truncatedKeep)]
	m.Value = m.Value[:min(n, truncatedKeep)]
	m.Headers = append(m.Headers[:len(m.Headers):len(m.Headers)], kafka.Header{Key: HeaderTruncated, Value: []byte(strconv.Itoa(n))})
	return m
}

// deadLetter wraps a bad message with the four headers of contract §1.
func deadLetter(m *kafka.Message, err error) kafka.Message {
	reason := err.Error()
	var ve *event.Error
	if errors.As(err, &ve) {
		reason = ve.Reason
	}
	return kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: HeaderError, Value: []byte(reason)},
			{Key: HeaderTopic, Value: []byte(m.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	}
}

// publishMarks sends, to every internal partition, the marks of the source
// partitions this instance owns: while a partition is caught up (its
// position reached the end offset just listed) its mark is the wall clock,
// otherwise the highest occurred_at forwarded from it. Progress is only
// updated after the events were acknowledged, so a mark never overtakes the
// events it covers.
func (r *repartitioner) publishMarks(ctx context.Context, internalPartitions int) error {
	ts := r.sourceTopics()
	counts, err := r.adm.Partitions(ctx, ts...)
	if err != nil {
		return err
	}
	ends, err := r.adm.EndOffsets(ctx, ts...)
	if err != nil {
		return err
	}
	now := r.cfg.Now().UTC()
	rec := marks{Topics: counts, Marks: map[source]time.Time{}}
	r.mu.Lock()
	for s, p := range r.assigned {
		end, ok := ends[s.Topic][s.Partition]
		p.caughtUp = ok && p.next >= 0 && p.next >= end
		at := p.max
		if p.caughtUp && now.After(at) {
			at = now
		}
		if !at.IsZero() {
			rec.Marks[s] = at
		}
	}
	r.mu.Unlock()
	if len(rec.Marks) == 0 {
		return nil
	}
	value := rec.encode()
	msgs := make([]kafka.Message, internalPartitions)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: value, Headers: []kafka.Header{{Key: markHeader, Value: []byte(strconv.Itoa(i))}}}
	}
	if err := r.marks.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish watermark marks: %w", summarize(err))
	}
	return nil
}

// markLoop publishes marks every interval until ctx ends.
func (r *repartitioner) markLoop(ctx context.Context) error {
	t := time.NewTicker(r.cfg.MarkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.publishMarks(ctx, r.parts); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("watermark marks not published", "err", err)
		}
	}
}
