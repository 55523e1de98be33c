package processor

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/bin"
)

// source names one source partition.
type source struct {
	Topic     string
	Partition int32
}

// marks is a watermark record: the partition count of every source topic,
// and per source partition its mark (highest occurred_at read, or the wall
// clock while caught up). The source stage publishes marks of its assigned
// partitions to every internal partition; the state stage keeps, per
// internal partition, the highest mark seen of every source partition.
//
// The state stage also keeps, in Applied, the highest offset of every
// source partition (by event.SourceKey) whose event it applied, and takes
// an internal event (accept) only when its offset is above it and its
// event.Origin.Prev at or below it.
type marks struct {
	Topics  map[string]int32
	Marks   map[source]time.Time
	W       time.Time        // the watermark reached (kept by the state stage only)
	Applied map[uint64]int64 // source key → highest offset applied (kept by the state stage only)
	// Next is the internal offset after the last batch written (kept by
	// the state stage only; 0 when unknown).
	Next int64
	// loose: Applied may be behind sessions under way (a record of
	// version 1, or Redis behind the committed offset), so the first
	// event then taken of each source partition is taken whatever its
	// Prev; synced holds those taken since. Not stored.
	loose  bool
	synced map[uint64]bool
}

// marksVersion 2 added Applied; version 1 records still decode.
const marksVersion = 2

func (m *marks) encode() []byte {
	w := bin.Writer{}
	w.Byte(marksVersion)
	topics := bin.SortedKeys(m.Topics)
	w.Uvarint(uint64(len(topics)))
	for _, t := range topics {
		w.String(t)
		w.Varint(int64(m.Topics[t]))
	}
	srcs := make([]source, 0, len(m.Marks))
	for s := range m.Marks {
		srcs = append(srcs, s)
	}
	sort.Slice(srcs, func(i, j int) bool {
		if srcs[i].Topic != srcs[j].Topic {
			return srcs[i].Topic < srcs[j].Topic
		}
		return srcs[i].Partition < srcs[j].Partition
	})
	w.Uvarint(uint64(len(srcs)))
	for _, s := range srcs {
		w.String(s.Topic)
		w.Varint(int64(s.Partition))
		w.Time(m.Marks[s])
	}
	w.Time(m.W)
	keys := make([]uint64, 0, len(m.Applied))
	for k := range m.Applied {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.Uvarint(k)
		w.Uvarint(uint64(m.Applied[k]))
	}
	w.Varint(m.Next)
	return w.B
}

func newMarks() marks {
	return marks{Topics: map[string]int32{}, Marks: map[source]time.Time{}, Applied: map[uint64]int64{}}
}

func decodeMarks(b []byte) (marks, error) {
	m := newMarks()
	r := bin.Reader{B: b}
	v := r.Byte()
	if v != 1 && v != marksVersion {
		return m, fmt.Errorf("decode watermark marks: unknown version %d", v)
	}
	for range r.Count(2) {
		t := r.String()
		m.Topics[t] = int32(r.Varint())
	}
	for range r.Count(3) {
		s := source{Topic: r.String(), Partition: int32(r.Varint())}
		m.Marks[s] = r.Time()
	}
	m.W = r.Time()
	if v >= 2 {
		for range r.Count(2) {
			k := r.Uvarint()
			m.Applied[k] = int64(r.Uvarint())
		}
		m.Next = r.Varint()
	} else {
		m.loose = true
	}
	if err := r.Err(); err != nil {
		return m, fmt.Errorf("decode watermark marks: %w", err)
	}
	return m, nil
}

// Why an internal event is not taken (accept).
const (
	forwardedAgain = "forwarded-again"
	overtook       = "overtook-failed-write"
)

// accept says whether the state stage takes an internal event from
// origin o, and records it as applied; otherwise it returns why not.
//
//   - An offset at or below the highest applied was forwarded again: a
//     source stage restarted from its last commit, which trails what it
//     forwarded, or retried a write that partly succeeded. However old the
//     event, it is dropped.
//   - A Prev above it means the event overtook an earlier one of its
//     forwarding session that never arrived: a write of several batches
//     to one partition failed in part. The source stage retries the whole
//     write (or, should it die first, its successor forwards again from
//     the last commit), so both come again in order; until then the event
//     is dropped.
//
// One session sends a source partition's events to an internal partition
// in offset order, and every session computes the same placement and so
// the same Prev, so the highest applied only ever moves to the next event
// due. Two sessions of one source partition (a rebalance) interleave
// harmlessly: each event is taken from whichever copy comes first.
func (m *marks) accept(o event.Origin) (reason string, ok bool) {
	if o.Source == 0 {
		return "", true // a record of version 1: no origin
	}
	hi, known := m.Applied[o.Source]
	if !known {
		hi = -1
	}
	switch {
	case o.Offset <= hi:
		return forwardedAgain, false
	case o.Prev > hi && (!m.loose || m.synced[o.Source]):
		return overtook, false
	}
	m.Applied[o.Source] = o.Offset
	if m.loose {
		if m.synced == nil {
			m.synced = map[uint64]bool{}
		}
		m.synced[o.Source] = true
	}
	return "", true
}

// WatermarkOf returns the event-time watermark stored in a partition's
// watermark record (redisstate.Store.Watermark), exact to the microsecond
// as states and timers are.
func WatermarkOf(record []byte) (time.Time, error) {
	m, err := decodeMarks(record)
	return m.W, err
}

// observe merges a published record: partition counts grow, marks only
// move forward.
func (m *marks) observe(o marks) {
	for t, n := range o.Topics {
		if n > m.Topics[t] {
			m.Topics[t] = n
		}
	}
	for s, at := range o.Marks {
		if at.After(m.Marks[s]) {
			m.Marks[s] = at
		}
	}
}

// watermark is the minimum mark over every partition of every source topic,
// minus lateness; zero while any partition has no mark yet. It never moves
// back.
func (m *marks) watermark(lateness time.Duration) time.Time {
	var low time.Time
	if len(m.Topics) == 0 {
		return m.W
	}
	for t, n := range m.Topics {
		for p := int32(0); p < n; p++ {
			at := m.Marks[source{t, p}]
			if at.IsZero() {
				return m.W
			}
			if low.IsZero() || at.Before(low) {
				low = at
			}
		}
	}
	if w := low.Add(-lateness); w.After(m.W) {
		m.W = w
	}
	return m.W
}
