package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/state"
)

// MaxResolved is how many resolved alerts the index keeps for the API.
const MaxResolved = 10000

// Store reads and writes state. It is safe for concurrent use; each
// internal partition is written by one goroutine at a time.
type Store struct {
	rdb redis.UniversalClient
	k   keys
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

// Load reads the states of ids in one pipeline; a customer never seen gets
// state.New. An undecodable state is an error: it is never replaced silently.
func (s *Store) Load(ctx context.Context, ids []string) (map[string]*state.Customer, error) {
	out := make(map[string]*state.Customer, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.k.customer(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load %d customer states: %w", len(ids), err)
	}
	for i, id := range ids {
		b, err := cmds[i].Bytes()
		if errors.Is(err, redis.Nil) {
			out[id] = state.New(id)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load state of customer %s: %w", id, err)
		}
		c, err := state.Unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("load state of customer %s: %w", id, err)
		}
		out[id] = c
	}
	return out, nil
}

// Customer reads one customer's state; nil when unknown.
func (s *Store) Customer(ctx context.Context, id string) (*state.Customer, error) {
	b, err := s.rdb.Get(ctx, s.k.customer(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state of customer %s: %w", id, err)
	}
	return state.Unmarshal(b)
}

// Due returns up to limit customers of partition whose timer is at or
// before t.
func (s *Store) Due(ctx context.Context, partition int, t time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.k.timers(partition), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read due timers of partition %d: %w", partition, err)
	}
	return ids, nil
}

// PendingTimers counts the timers of partition.
func (s *Store) PendingTimers(ctx context.Context, partition int) (int64, error) {
	return s.rdb.ZCard(ctx, s.k.timers(partition)).Result()
}

// Batch is everything one processing step of a partition makes durable.
type Batch struct {
	Partition int
	States    []*state.Customer
	// Timers maps each written customer to its next due time; zero removes
	// the timer.
	Timers    map[string]time.Time
	Alerts    []alerts.Alert
	Watermark []byte // opaque watermark record of the partition; nil keeps it
	// Clock is the partition's event-time watermark, published for readers
	// such as the webhook stall guard; zero keeps it.
	Clock time.Time
	// Spend holds the trailing-365-day spend of customers whose spend
	// changed, for the segment ranking.
	Spend map[string]float64
	// KPI holds the KPI facts of customers whose facts changed.
	KPI map[string]KPIChange
}

// Write stores b in one pipeline. The pipeline is not a transaction: after
// a crash in the middle, replaying the batch rewrites the same values.
func (s *Store) Write(ctx context.Context, b *Batch) error {
	// Every state is encoded into one arena; each value is a slice of it.
	// When the arena grows, earlier values keep the old backing array, which
	// is never written again, so no value is copied twice.
	var arena []byte
	if len(b.States) > 0 {
		arena = make([]byte, 0, 512*len(b.States))
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.writeKPI(ctx, p, b.KPI)
		for _, c := range b.States {
			start := len(arena)
			arena = c.AppendBinary(arena)
			p.Set(ctx, s.k.customer(c.ID), arena[start:len(arena):len(arena)], 0)
			if c.Deleted {
				p.ZRem(ctx, s.k.spend(), c.ID)
			}
		}
		for id, spend := range b.Spend {
			p.ZAdd(ctx, s.k.spend(), redis.Z{Score: spend, Member: id})
		}
		tk := s.k.timers(b.Partition)
		for id, due := range b.Timers {
			if due.IsZero() {
				p.ZRem(ctx, tk, id)
			} else {
				p.ZAdd(ctx, tk, redis.Z{Score: float64(due.UnixMilli()), Member: id})
			}
		}
		for i := range b.Alerts {
			if err := s.indexAlert(ctx, p, &b.Alerts[i]); err != nil {
				return err
			}
		}
		if b.Watermark != nil {
			p.Set(ctx, s.k.watermark(b.Partition), b.Watermark, 0)
		}
		if !b.Clock.IsZero() {
			p.HSet(ctx, s.k.clock(), strconv.Itoa(b.Partition), b.Clock.UnixMilli())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write batch of partition %d (%d customers, %d alerts): %w", b.Partition, len(b.States), len(b.Alerts), err)
	}
	return nil
}

func (s *Store) indexAlert(ctx context.Context, p redis.Pipeliner, a *alerts.Alert) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("index alert %s: %w", a.AlertID, err)
	}
	score := float64(a.Time.UnixMilli())
	p.HSet(ctx, s.k.alertData(), a.AlertID, data)
	if a.Status == alerts.Firing {
		p.ZAdd(ctx, s.k.firing(), redis.Z{Score: score, Member: a.AlertID})
		return nil
	}
	p.ZRem(ctx, s.k.firing(), a.AlertID)
	p.ZAdd(ctx, s.k.resolved(), redis.Z{Score: score, Member: a.AlertID})
	return nil
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
	for _, v := range vals {
		if str, ok := v.(string); ok {
			out = append(out, json.RawMessage(str))
		}
	}
	return out, nil
}

// Clock returns the event-time watermark of the whole processor: the
// lowest over the internal partitions that published one; zero when none
// has.
func (s *Store) Clock(ctx context.Context) (time.Time, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.clock()).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("read the watermark: %w", err)
	}
	var low int64
	for _, v := range m {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("watermark %q: %w", v, err)
		}
		if low == 0 || ms < low {
			low = ms
		}
	}
	if low == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(low).UTC(), nil
}

// Watermark reads the watermark record of partition (nil when none).
func (s *Store) Watermark(ctx context.Context, partition int) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.k.watermark(partition)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// SegmentThresholds returns the trailing-365-day spend at or above which a
// customer is in segment A (top 20 %) and B (next 30 %).
func (s *Store) SegmentThresholds(ctx context.Context) (a, b float64, err error) {
	n, err := s.rdb.ZCard(ctx, s.k.spend()).Result()
	if err != nil || n == 0 {
		return 0, 0, err
	}
	at := func(rank int64) (float64, error) {
		zs, err := s.rdb.ZRevRangeWithScores(ctx, s.k.spend(), rank, rank).Result()
		if err != nil || len(zs) == 0 {
			return 0, err
		}
		return zs[0].Score, nil
	}
	if a, err = at(max(0, (n*20+99)/100-1)); err != nil {
		return 0, 0, err
	}
	b, err = at(max(0, (n*50+99)/100-1))
	return a, b, err
}
