package synth

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Write sends msgs to w in chunks of 20,000 and returns how many were
// written.
func Write(ctx context.Context, w *kafka.Writer, msgs []Message) (int, error) {
	const chunk = 20000
	batch := make([]kafka.Message, 0, min(chunk, len(msgs)))
	written := 0
	for i, m := range msgs {
		batch = append(batch, kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value})
		if len(batch) == chunk || i == len(msgs)-1 {
			if err := w.WriteMessages(ctx, batch...); err != nil {
				return written, fmt.Errorf("write %d events: %w", len(msgs), err)
			}
			written += len(batch)
			batch = batch[:0]
		}
	}
	return written, nil
}
