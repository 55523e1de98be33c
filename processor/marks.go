package processor

import (
	"fmt"
	"sort"
	"time"

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
type marks struct {
	Topics map[string]int32
	Marks  map[source]time.Time
	W      time.Time // the watermark reached (kept by the state stage only)
}

const marksVersion = 1

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
	return w.B
}

func decodeMarks(b []byte) (marks, error) {
	m := marks{Topics: map[string]int32{}, Marks: map[source]time.Time{}}
	r := bin.Reader{B: b}
	if v := r.Byte(); v != marksVersion {
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
	if err := r.Err(); err != nil {
		return m, fmt.Errorf("decode watermark marks: %w", err)
	}
	return m, nil
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
