package redisstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timers are kept per partition in buckets of an hour: the hash
// "cw:{p3}:t:<hour>" maps each customer whose timer falls due in that hour
// (Unix hours) to its due time, in ms from the hour's start, and the sorted set "cw:{p3}:ti"
// holds each bucket's hour scored by the earliest due time in it (a lower
// bound: a timer moved out of a bucket that was not read leaves the score
// as it was, until the bucket is read). A bucket of up to 512 timers is a
// listpack, about 25 bytes a timer; one timer per customer.

// TimerMove moves a customer's timer from Old to New, in Unix ms; 0 is no
// timer.
type TimerMove struct {
	ID       string
	Old, New int64
}

// Due is a timer that fell due.
type Due struct {
	ID string
	At int64 // Unix ms
}

const hourMS = int64(time.Hour / time.Millisecond)

// HourOf is the Unix hour of the Unix ms t.
func HourOf(ms int64) int64 {
	h := ms / hourMS
	if ms < 0 && ms%hourMS != 0 {
		h--
	}
	return h
}

// timerCache is what a partition's writer learnt of its timers: the whole
// index once read, and the contents of the buckets it read because they
// held due timers. Its own writes keep it equal to Redis; a failed write
// resets it.
type timerCache struct {
	loaded  bool
	index   map[int64]int64            // bucket hour → earliest due (exact when the bucket is cached)
	buckets map[int64]map[string]int64 // read buckets: customer id → due
	dirty   map[int64]bool             // index entries Redis holds below their exact value
}

func (t *timerCache) reset() { *t = timerCache{} }

func (t *timerCache) load(ctx context.Context, s *Store, p int) error {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.k.timerIndex(p), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("read the timer index of partition %d: %w", p, err)
	}
	index := make(map[int64]int64, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		h, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return fmt.Errorf("timer index of partition %d holds %q: %w", p, m, err)
		}
		index[h] = int64(z.Score)
	}
	*t = timerCache{loaded: true, index: index, buckets: map[int64]map[string]int64{}, dirty: map[int64]bool{}}
	return nil
}

// Due returns up to limit of the partition's timers due at or before at,
// earliest first. Only buckets whose earliest timer is due are read, each
// once: later steps find them in the cache.
func (pt *Partition) Due(ctx context.Context, at time.Time, limit int) ([]Due, error) {
	t := &pt.timers
	if !t.loaded {
		if err := t.load(ctx, pt.s, pt.p); err != nil {
			return nil, err
		}
	}
	atMS := at.UnixMilli()
	var hours, miss []int64
	for h, earliest := range t.index {
		if earliest <= atMS {
			hours = append(hours, h)
			if t.buckets[h] == nil {
				miss = append(miss, h)
			}
		}
	}
	if len(miss) > 0 {
		read, err := pt.s.readBuckets(ctx, pt.p, miss)
		if err != nil {
			return nil, err
		}
		for i, h := range miss {
			b := read[i]
			t.buckets[h] = b
			if exact, ok := earliest(b); !ok || exact != t.index[h] {
				t.dirty[h] = true
				t.index[h] = exact
			}
		}
	}
	var out []Due
	for _, h := range hours {
		for id, due := range t.buckets[h] {
			if due <= atMS {
				out = append(out, Due{id, due})
			}
		}
	}
	sortDue(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// sortDue orders timers earliest first, by customer id within an instant.
func sortDue(ds []Due) {
	slices.SortFunc(ds, func(a, b Due) int { return cmp.Or(cmp.Compare(a.At, b.At), cmp.Compare(a.ID, b.ID)) })
}

// earliest is the earliest due time in b; false when b is empty.
func earliest(b map[string]int64) (int64, bool) {
	var low int64
	ok := false
	for _, due := range b {
		if !ok || due < low {
			low, ok = due, true
		}
	}
	return low, ok
}

// readBuckets reads the timer buckets of hours in one pipeline.
func (s *Store) readBuckets(ctx context.Context, p int, hours []int64) ([]map[string]int64, error) {
	cmds := make([]*redis.MapStringStringCmd, len(hours))
	if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, h := range hours {
			cmds[i] = pl.HGetAll(ctx, s.k.timerBucket(p, h))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %d timer buckets of partition %d: %w", len(hours), p, err)
	}
	out := make([]map[string]int64, len(hours))
	for i, c := range cmds {
		b := make(map[string]int64, len(c.Val()))
		for id, v := range c.Val() {
			due, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("timer of customer %s in %s: %q: %w", id, s.k.timerBucket(p, hours[i]), v, err)
			}
			b[id] = hours[i]*hourMS + due
		}
		out[i] = b
	}
	return out, nil
}

// write queues moves on tx and applies them to the cache, which a failed
// transaction resets. Each bucket a move touched gets its index entry: the
// exact earliest due when the bucket is cached (removed when empty), else
// lowered to the earliest timer added.
func (t *timerCache) write(ctx context.Context, tx redis.Pipeliner, k keys, p int, moves []TimerMove) {
	type bucket struct {
		del   []string
		set   []any // field, value, …
		added int64 // earliest due added, 0 when none
	}
	touched := map[int64]*bucket{}
	at := func(h int64) *bucket {
		b := touched[h]
		if b == nil {
			b = &bucket{}
			touched[h] = b
		}
		return b
	}
	for _, m := range moves {
		if m.Old == m.New {
			continue
		}
		oh, nh := HourOf(m.Old), HourOf(m.New)
		if m.Old != 0 && (m.New == 0 || oh != nh) {
			b := at(oh)
			b.del = append(b.del, m.ID)
			if c := t.buckets[oh]; c != nil {
				delete(c, m.ID)
			}
		}
		if m.New != 0 {
			b := at(nh)
			b.set = append(b.set, m.ID, m.New-nh*hourMS)
			if c := t.buckets[nh]; c != nil {
				c[m.ID] = m.New
			}
			if b.added == 0 || m.New < b.added {
				b.added = m.New
			}
		}
	}
	for h := range t.dirty {
		at(h)
	}
	var exact, lower []redis.Z
	var gone []any
	for h, b := range touched {
		key := k.timerBucket(p, h)
		if len(b.del) > 0 {
			tx.HDel(ctx, key, b.del...)
		}
		if len(b.set) > 0 {
			tx.HSet(ctx, key, b.set...)
		}
		member := strconv.FormatInt(h, 10)
		if c := t.buckets[h]; c != nil {
			if low, ok := earliest(c); ok {
				exact = append(exact, redis.Z{Score: float64(low), Member: member})
				t.index[h] = low
			} else {
				gone = append(gone, member)
				delete(t.index, h)
				delete(t.buckets, h)
			}
			continue
		}
		if b.added == 0 {
			continue
		}
		lower = append(lower, redis.Z{Score: float64(b.added), Member: member})
		if t.loaded {
			if cur, ok := t.index[h]; !ok || b.added < cur {
				t.index[h] = b.added
			}
		}
	}
	index := k.timerIndex(p)
	if len(exact) > 0 {
		tx.ZAdd(ctx, index, exact...)
	}
	if len(lower) > 0 {
		tx.ZAddLT(ctx, index, lower...)
	}
	if len(gone) > 0 {
		tx.ZRem(ctx, index, gone...)
	}
	clear(t.dirty)
}

// Timers returns every timer of partition, read afresh from Redis:
// customer id → due time (Unix ms).
func (s *Store) Timers(ctx context.Context, partition int) (map[string]int64, error) {
	hours, err := s.timerHours(ctx, partition)
	if err != nil {
		return nil, err
	}
	read, err := s.readBuckets(ctx, partition, hours)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, b := range read {
		for id, due := range b {
			out[id] = due
		}
	}
	return out, nil
}

func (s *Store) timerHours(ctx context.Context, partition int) ([]int64, error) {
	members, err := s.rdb.ZRange(ctx, s.k.timerIndex(partition), 0, -1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read the timer index of partition %d: %w", partition, err)
	}
	hours := make([]int64, 0, len(members))
	for _, m := range members {
		h, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("timer index of partition %d holds %q: %w", partition, m, err)
		}
		hours = append(hours, h)
	}
	return hours, nil
}

// Due returns up to limit customers of partition whose timer is at or
// before t, earliest first, read afresh from Redis.
func (s *Store) Due(ctx context.Context, partition int, t time.Time, limit int) ([]string, error) {
	all, err := s.Timers(ctx, partition)
	if err != nil {
		return nil, err
	}
	var due []Due
	for id, at := range all {
		if at <= t.UnixMilli() {
			due = append(due, Due{id, at})
		}
	}
	sortDue(due)
	ids := make([]string, 0, min(len(due), limit))
	for i := 0; i < len(due) && i < limit; i++ {
		ids = append(ids, due[i].ID)
	}
	return ids, nil
}

// PendingTimers counts the timers of partition: one HLEN per bucket, in
// one pipeline.
func (s *Store) PendingTimers(ctx context.Context, partition int) (int64, error) {
	hours, err := s.timerHours(ctx, partition)
	if err != nil || len(hours) == 0 {
		return 0, err
	}
	cmds := make([]*redis.IntCmd, len(hours))
	if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, h := range hours {
			cmds[i] = pl.HLen(ctx, s.k.timerBucket(partition, h))
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("count the timers of partition %d: %w", partition, err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
