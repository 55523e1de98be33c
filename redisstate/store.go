package redisstate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/state"
)

// MaxResolved is how many resolved alerts the index keeps for the API.
const MaxResolved = 10000

// Store reads and writes state. It is safe for concurrent use; each
// internal partition is written by one goroutine at a time, through its
// Partition.
type Store struct {
	rdb   redis.UniversalClient
	k     keys
	parts atomic.Int32 // internal partitions, once known
}

// New returns a store on rdb with key prefix (default "cw").
func New(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "cw"
	}
	return &Store{rdb: rdb, k: keys{prefix: prefix}}
}

// Client returns the Redis client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// ErrLayout reports Redis state that this version cannot use as it is.
var ErrLayout = errors.New("redis state layout")

// Init records that the state is kept for partitions internal partitions,
// or checks that it was: every customer's state lives under its
// partition's hash tag, so the internal topic's partition count cannot
// change under existing state. State in an earlier version's layout is
// refused the same way.
func (s *Store) Init(ctx context.Context, partitions int) error {
	if partitions <= 0 {
		return fmt.Errorf("%w: %d internal partitions", ErrLayout, partitions)
	}
	m, err := s.rdb.HGetAll(ctx, s.k.meta()).Result()
	if err != nil {
		return fmt.Errorf("read %s: %w", s.k.meta(), err)
	}
	if len(m) == 0 {
		n, err := s.rdb.Exists(ctx, s.k.legacySpend()).Result()
		if err != nil {
			return fmt.Errorf("check for state of an earlier version: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: Redis holds state in the layout of an earlier churnwatch (%s exists); "+
				"replay the source topics into an empty Redis (or another key prefix) to rebuild it", ErrLayout, s.k.legacySpend())
		}
		if err := s.rdb.HSet(ctx, s.k.meta(), "layout", Layout, "partitions", partitions).Err(); err != nil {
			return fmt.Errorf("record the state layout: %w", err)
		}
		s.parts.Store(int32(partitions))
		return nil
	}
	if m["layout"] != Layout {
		return fmt.Errorf("%w: %s says layout %q, this version writes %q", ErrLayout, s.k.meta(), m["layout"], Layout)
	}
	if m["partitions"] != strconv.Itoa(partitions) {
		return fmt.Errorf("%w: the state in Redis was written for %s internal partitions, the internal topic has %d; "+
			"give the topic its former partition count, or replay the source topics into an empty Redis", ErrLayout, m["partitions"], partitions)
	}
	s.parts.Store(int32(partitions))
	return nil
}

// Partitions returns the internal partitions the state is kept for, as
// Init recorded; 0 when no processor has written yet.
func (s *Store) Partitions(ctx context.Context) (int, error) {
	if n := s.parts.Load(); n > 0 {
		return int(n), nil
	}
	v, err := s.rdb.HGet(ctx, s.k.meta(), "partitions").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", s.k.meta(), err)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %s holds partitions %q", ErrLayout, s.k.meta(), v)
	}
	s.parts.Store(int32(n))
	return n, nil
}

// Partition is the part of the store one internal partition writes. It
// keeps what it learnt of the partition's timers; only the goroutine that
// owns the partition uses it.
type Partition struct {
	s      *Store
	p      int
	timers timerCache
}

// Partition returns the writer of partition p.
func (s *Store) Partition(p int) *Partition {
	return &Partition{s: s, p: p}
}

// Load reads the states of ids, all owned by the partition, in one MGET
// (one slot: the partition's hash tag); a customer never seen gets state.New. An undecodable state is
// an error: it is never replaced silently.
func (pt *Partition) Load(ctx context.Context, ids []string) (map[string]*state.Customer, error) {
	s := pt.s
	out := make(map[string]*state.Customer, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.k.customer(pt.p, id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("load %d customer states: %w", len(ids), err)
	}
	for i, id := range ids {
		v, ok := vals[i].(string)
		if !ok {
			out[id] = state.New(id)
			continue
		}
		c, err := state.Unmarshal(id, []byte(v))
		if err != nil {
			return nil, fmt.Errorf("load state of customer %s: %w", id, err)
		}
		out[id] = c
	}
	return out, nil
}

// Customer reads one customer's state, one GET under the hash tag of the
// partition that owns it; nil when unknown.
func (s *Store) Customer(ctx context.Context, id string) (*state.Customer, error) {
	n, err := s.Partitions(ctx)
	if err != nil || n == 0 {
		return nil, err
	}
	b, err := s.rdb.Get(ctx, s.k.customer(state.Partition(id, n), id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state of customer %s: %w", id, err)
	}
	return state.Unmarshal(id, b)
}

// Batch is everything one processing step of a partition makes durable.
type Batch struct {
	States []*state.Customer
	// Timers moves customers' timers (see TimerMove).
	Timers []TimerMove
	Alerts []alerts.Alert
	// Watermark is the opaque watermark record of the partition; nil keeps
	// it.
	Watermark []byte
	// Clock is the partition's event-time watermark, published for readers
	// such as the webhook stall guard; zero keeps it.
	Clock time.Time
	// Counters are the batch's changes of the KPI counters and the spend
	// histogram; nil changes none.
	Counters *Counters

	// Encoded is set by Write: Encoded[i] is States[i] as stored. The
	// slices are never written again.
	Encoded [][]byte
}

// Write stores b for the partition in one MULTI/EXEC transaction under
// its hash tag: states, timers, counters and watermark together or not at
// all, so counters never count a change twice when a batch is replayed
// after a crash. The alert index goes first, in a pipeline of its own; its
// values are absolute.
func (pt *Partition) Write(ctx context.Context, b *Batch) error {
	s, p := pt.s, pt.p
	if len(b.Alerts) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			s.indexAlerts(ctx, pl, b.Alerts)
			return nil
		}); err != nil {
			return fmt.Errorf("index %d alerts of partition %d: %w", len(b.Alerts), p, err)
		}
	}
	// Every state is encoded into one arena; each value is a slice of it.
	// When the arena grows, earlier values keep the old backing array, which
	// is never written again, so no value is copied twice.
	var arena []byte
	if len(b.States) > 0 {
		arena = make([]byte, 0, 512*len(b.States))
	}
	b.Encoded = b.Encoded[:0]
	_, err := s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		b.Counters.write(ctx, tx, s.k, p)
		if len(b.States) > 0 {
			kv := make([]any, 0, 2*len(b.States))
			for _, c := range b.States {
				start := len(arena)
				arena = c.AppendBinary(arena)
				v := arena[start:len(arena):len(arena)]
				kv = append(kv, s.k.customer(p, c.ID), v)
				b.Encoded = append(b.Encoded, v)
			}
			tx.MSet(ctx, kv...)
		}
		pt.timers.write(ctx, tx, s.k, p, b.Timers)
		if b.Watermark != nil {
			tx.Set(ctx, s.k.watermark(p), b.Watermark, 0)
		}
		if !b.Clock.IsZero() {
			tx.Set(ctx, s.k.clock(p), b.Clock.UnixMilli(), 0)
		}
		return nil
	})
	if err != nil {
		pt.timers.reset()
		return fmt.Errorf("write batch of partition %d (%d customers, %d alerts): %w", p, len(b.States), len(b.Alerts), err)
	}
	return nil
}

// indexAlerts queues the alert index entries of as: each alert's compact
// encoding (alerts.Alert.AppendBinary) by id, and its id in the firing or
// resolved set, scored by its time; one command of each kind.
func (s *Store) indexAlerts(ctx context.Context, p redis.Pipeliner, as []alerts.Alert) {
	data := make([]any, 0, 2*len(as))
	var firing, resolved []redis.Z
	var ended []any
	for i := range as {
		a := &as[i]
		m := indexMember(a.AlertID)
		data = append(data, m, a.AppendBinary(nil))
		z := redis.Z{Score: float64(a.Time.UnixMilli()), Member: m}
		if a.Status == alerts.Firing {
			firing = append(firing, z)
			continue
		}
		ended = append(ended, m)
		resolved = append(resolved, z)
	}
	p.HSet(ctx, s.k.alertData(), data...)
	if len(ended) > 0 {
		// An episode that fired and resolved in one batch: firing first.
		if len(firing) > 0 {
			p.ZAdd(ctx, s.k.firing(), firing...)
			firing = nil
		}
		p.ZRem(ctx, s.k.firing(), ended...)
		p.ZAdd(ctx, s.k.resolved(), resolved...)
	}
	if len(firing) > 0 {
		p.ZAdd(ctx, s.k.firing(), firing...)
	}
}

// indexMember is how the alert index names an alert: an alert id of 32
// hexadecimal digits (alerts.ID) as a zero byte and its 16 bytes, half the
// memory in each of the two places it is kept; any other id as it is.
func indexMember(id string) string {
	var raw [16]byte
	if len(id) != 32 || id != strings.ToLower(id) {
		return id
	}
	if _, err := hex.Decode(raw[:], []byte(id)); err != nil {
		return id
	}
	return "\x00" + string(raw[:])
}

// alertID is the alert id of an index member.
func alertID(member string) string {
	if len(member) == 17 && member[0] == 0 {
		return hex.EncodeToString([]byte(member[1:]))
	}
	return member
}

// TrimResolved keeps the newest MaxResolved resolved alerts in the index.
func (s *Store) TrimResolved(ctx context.Context) error {
	old, err := s.rdb.ZRange(ctx, s.k.resolved(), 0, -MaxResolved-1).Result()
	if err != nil || len(old) == 0 {
		return err
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.k.resolved(), toAny(old)...)
		p.HDel(ctx, s.k.alertData(), old...)
		return nil
	})
	return err
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Alerts returns the indexed alerts of a status ("firing" or "resolved"),
// newest first, at most limit.
func (s *Store) Alerts(ctx context.Context, status alerts.Status, limit int) ([]json.RawMessage, error) {
	key := s.k.firing()
	if status == alerts.Resolved {
		key = s.k.resolved()
	}
	ids, err := s.rdb.ZRevRange(ctx, key, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list %s alerts: %w", status, err)
	}
	if len(ids) == 0 {
		return []json.RawMessage{}, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.k.alertData(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s alerts: %w", status, err)
	}
	out := make([]json.RawMessage, 0, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // trimmed meanwhile
		}
		id := alertID(ids[i])
		a, err := alerts.Decode(id, []byte(str))
		if err != nil {
			return nil, fmt.Errorf("alert %s in the index: %w", id, err)
		}
		j, err := json.Marshal(&a)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// Clock returns the event-time watermark of the whole processor: the
// lowest over the internal partitions that published one; zero when none
// has.
func (s *Store) Clock(ctx context.Context) (time.Time, error) {
	var low int64
	err := s.perPartition(ctx, func(p redis.Pipeliner, part int) func() error {
		cmd := p.Get(ctx, s.k.clock(part))
		return func() error {
			v, err := cmd.Result()
			if errors.Is(err, redis.Nil) {
				return nil
			}
			if err != nil {
				return err
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("watermark %q of partition %d: %w", v, part, err)
			}
			if low == 0 || ms < low {
				low = ms
			}
			return nil
		}
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read the watermark: %w", err)
	}
	if low == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(low).UTC(), nil
}

// perPartition queues, in one pipeline, what read returns for every
// internal partition, then runs the functions it returned in partition
// order. With no partitions recorded yet, it does nothing.
func (s *Store) perPartition(ctx context.Context, read func(p redis.Pipeliner, partition int) func() error) error {
	n, err := s.Partitions(ctx)
	if err != nil || n == 0 {
		return err
	}
	done := make([]func() error, n)
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			done[i] = read(p, i)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, f := range done {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Watermark reads the watermark record of partition (nil when none).
func (s *Store) Watermark(ctx context.Context, partition int) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.k.watermark(partition)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}
