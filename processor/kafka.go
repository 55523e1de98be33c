package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/internal/backoff"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/state"
)

// markHeader marks a watermark record on the internal topic; its value is
// the internal partition the record is addressed to.
const markHeader = "churnwatch-mark"

// kafka-go allocates and clears room for BatchSize messages for every
// produce batch of a partition, however few it then holds, and writes a
// partition's batches one after the other, each waiting for its
// acknowledgement. Small batches suit live traffic (with 2,000, its small
// writes cleared 300 KB each, a quarter of the CPU at 10,000 events/s);
// large ones suit bulk writes (a backfill's forwards, a storm of due
// timers' alerts: 20,000 alerts in batches of 500 took twice as long). A
// sizedWriter sends each write through the writer of its size.
const (
	writerBatch = 500  // writes of up to this many messages
	bulkBatch   = 2000 // larger writes
)

// sizedWriter writes up to writerBatch messages through small and more
// through bulk, two writers of the same topic. Writes of one caller are
// sequential, so their order is kept.
type sizedWriter struct{ small, bulk *kafka.Writer }

func newSizedWriter(conn kafkaconn.Conn, topic string, balancer kafka.Balancer) *sizedWriter {
	bulk := newWriter(conn, topic, balancer)
	bulk.BatchSize = bulkBatch
	return &sizedWriter{small: newWriter(conn, topic, balancer), bulk: bulk}
}

func (w *sizedWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) > writerBatch {
		return w.bulk.WriteMessages(ctx, msgs...)
	}
	return w.small.WriteMessages(ctx, msgs...)
}

func (w *sizedWriter) Close() error { return errors.Join(w.small.Close(), w.bulk.Close()) }

// newWriter returns a synchronous writer that waits for all in-sync
// replicas, partitions by key hash and has its own transport, so that
// metadata of a topic created a moment ago is not served from a stale cache.
func newWriter(conn kafkaconn.Conn, topic string, balancer kafka.Balancer) *kafka.Writer {
	if balancer == nil {
		balancer = &kafka.Hash{}
	}
	t := conn.Transport()
	t.MetadataTTL = 2 * time.Second
	return &kafka.Writer{
		Addr:         conn.Addr(),
		Topic:        topic,
		Balancer:     balancer,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    writerBatch,
		BatchBytes:   1e6, // under the broker's default message.max.bytes
		BatchTimeout: 2 * time.Millisecond,
		MaxAttempts:  3,
		Transport:    t,
	}
}

// summarize shortens a kafka-go error that repeats one cause per message,
// and names the settings that fix a refused login or an untrusted
// certificate.
func summarize(err error) error { return kafkaconn.WriteError(err) }

// internalBalancer places events by key (customer id) with
// state.Partition over n partitions, the count of the Redis layout (the
// source stage chains each event to the one it sent before to the same
// partition, so both must agree), and sends a watermark record to the
// partition its header names.
type internalBalancer struct{ n int }

func (b *internalBalancer) Balance(m kafka.Message, partitions ...int) int {
	for _, h := range m.Headers {
		if h.Key == markHeader {
			if p, err := strconv.Atoi(string(h.Value)); err == nil {
				return p
			}
		}
	}
	if p := state.Partition(m.Key, b.n); p < len(partitions) {
		return partitions[p]
	}
	// Fewer partitions than the layout's: metadata not yet complete. The
	// write then fails and is retried whole.
	return -1
}

// newReader reads one partition from offset (an absolute offset or
// kafka.FirstOffset) without a group: the group generation assigned it.
func newReader(conn kafkaconn.Conn, topic string, partition int, offset int64) (*kafka.Reader, error) {
	r := conn.Reader(kafka.ReaderConfig{
		Topic:          topic,
		Partition:      partition,
		MinBytes:       1,
		MaxBytes:       1 << 20,                // larger responses cost the broker copying (with 16 MiB, a fifth of the CPU of a backfill)
		MaxWait:        500 * time.Millisecond, // also what the broker has to start answering: a message of many MiB takes time
		QueueCapacity:  4096,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
	})
	if err := r.SetOffset(offset); err != nil {
		r.Close()
		return nil, kafkaconn.Explain(fmt.Errorf("seek %s/%d to %d: %w", topic, partition, offset, err))
	}
	return r, nil
}

// fetchBatch returns up to max messages: it waits up to idle for the first,
// then up to wait for more. An empty batch means nothing arrived.
func fetchBatch(ctx context.Context, r *kafka.Reader, max int, wait, idle time.Duration, buf []kafka.Message) ([]kafka.Message, error) {
	buf = buf[:0]
	fctx, cancel := context.WithTimeout(ctx, idle)
	m, err := r.FetchMessage(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return buf, nil
		}
		return nil, err
	}
	buf = append(buf, m)
	fctx, cancel = context.WithTimeout(ctx, wait)
	defer cancel()
	for len(buf) < max {
		m, err := r.FetchMessage(fctx)
		if err != nil {
			break
		}
		buf = append(buf, m)
	}
	return buf, nil
}

// partitionFunc handles one assigned partition until ctx ends.
type partitionFunc func(ctx context.Context, gen *kafka.Generation, topic string, partition int, offset int64)

// runGroup joins group on topics and runs fn for every assigned partition
// of every generation, until ctx ends. onJoin reports membership.
func runGroup(ctx context.Context, conn kafkaconn.Conn, group string, topics []string, log *slog.Logger, joined func(bool), fn partitionFunc) error {
	cg, err := conn.ConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     group,
		Topics:                 topics,
		StartOffset:            kafka.FirstOffset,
		HeartbeatInterval:      time.Second,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       10 * time.Second,
		JoinGroupBackoff:       time.Second,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", group, err)
	}
	stop := context.AfterFunc(ctx, func() { cg.Close() })
	defer stop()
	defer cg.Close()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			joined(false)
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			log.Warn("consumer group join failed; retrying", "group", group, "err", kafkaconn.Explain(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		joined(true)
		n := 0
		for topic, parts := range gen.Assignments {
			for _, pa := range parts {
				n++
				gen.Start(func(gctx context.Context) {
					pctx, cancel := context.WithCancel(ctx)
					defer cancel()
					stop := context.AfterFunc(gctx, cancel)
					defer stop()
					fn(pctx, gen, topic, pa.ID, pa.Offset)
				})
			}
		}
		log.Info("consumer group generation", "group", group, "generation", gen.ID, "partitions", n)
	}
}

// commit commits the next offset to read of one partition, retrying while
// the generation lasts.
func commit(ctx context.Context, gen *kafka.Generation, topic string, partition int, next int64) error {
	wait := 50 * time.Millisecond
	for {
		err := gen.CommitOffsets(map[string]map[int]int64{topic: {partition: next}})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("commit %s/%d at %d: %w", topic, partition, next, err)
		}
		if !backoff.Sleep(ctx, &wait) {
			return fmt.Errorf("commit %s/%d at %d: %w", topic, partition, next, err)
		}
	}
}

// committer commits one partition's offset at most every interval: many
// small batches of live traffic would otherwise each send a commit, and
// kafka-go's goroutines waiting on the shared coordinator connection spin
// while another's response is read (a fifth of the CPU at 10,000 events/s
// before this). A newer offset waiting for its turn is committed by flush,
// which the partition loops call when the partition goes idle and before
// they leave it. Committing later is always safe: what was processed after
// the last commit is processed again, idempotently.
type committer struct {
	gen       *kafka.Generation
	topic     string
	partition int
	every     time.Duration
	pending   int64 // next offset to commit; -1 none
	last      time.Time
}

func newCommitter(gen *kafka.Generation, topic string, partition int, every time.Duration) *committer {
	return &committer{gen: gen, topic: topic, partition: partition, every: every, pending: -1}
}

// commit records next and commits it when the interval has passed or now
// is set.
func (c *committer) commit(ctx context.Context, next int64, now bool) error {
	c.pending = next
	if !now && time.Since(c.last) < c.every {
		return nil
	}
	return c.flush(ctx)
}

// flush commits the offset waiting, if any.
func (c *committer) flush(ctx context.Context) error {
	if c.pending < 0 {
		return nil
	}
	if err := commit(ctx, c.gen, c.topic, c.partition, c.pending); err != nil {
		return err
	}
	c.pending, c.last = -1, time.Now()
	return nil
}

// leave flushes the offset waiting when a partition is left, within grace
// after ctx ended.
func (c *committer) leave(ctx context.Context, grace time.Duration, log *slog.Logger) {
	dctx, cancel := drainContext(ctx, grace)
	defer cancel()
	if err := c.flush(dctx); err != nil {
		log.Warn("last offset not committed; its batch will be processed again", "err", err)
	}
}

// drainContext returns a context that outlives ctx by grace: work begun
// before a shutdown or a revocation is finished and committed, within a
// bound.
func drainContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return d, func() { stop(); cancel() }
}
