// Package backoff retries operations against Kafka and Redis with a
// doubling pause, so that a restart of either costs a pause, not a crash.
package backoff

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sleep waits for *d (doubling it up to 5s); false when ctx ended.
func Sleep(ctx context.Context, d *time.Duration) bool {
	t := time.NewTimer(*d)
	defer t.Stop()
	if *d < 5*time.Second {
		*d *= 2
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Retry runs op until it succeeds or ctx ends, logging each failure and
// counting it in errs under the label what.
func Retry(ctx context.Context, log *slog.Logger, errs *prometheus.CounterVec, what string, op func() error) error {
	d := 100 * time.Millisecond
	for {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs.WithLabelValues(what).Inc()
		log.Warn(what+" failed; retrying", "err", err, "backoff", d)
		if !Sleep(ctx, &d) {
			return ctx.Err()
		}
	}
}
