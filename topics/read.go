package topics

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadAll reads every record topic holds now, partition after partition,
// with kafka-go readers on brokers (plain TCP). A read that waits more
// than 30 seconds is an error.
func (a *Admin) ReadAll(ctx context.Context, brokers []string, topic string) ([]kafka.Message, error) {
	ends, err := a.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	starts, err := a.StartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	for p, end := range ends[topic] {
		if end <= starts[topic][p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: int(p), MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(starts[topic][p]); err != nil {
			r.Close()
			return nil, err
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return out, nil
}
