package processor

import (
	"context"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

// BenchmarkPipeline measures the whole pipeline on a backfill: a year of a
// synthetic population already on the source topics of a kfake broker is
// validated, re-keyed, applied to state in a real redis-server, run through
// the built-in rules and turned into alerts on the alert topic. One
// iteration processes the whole backfill; the figure is events/s from
// processor start until every offset of both stages is committed and the
// watermark reached the wall clock.
//
//	go test -run '^$' -bench Pipeline -benchtime 3x ./processor
func BenchmarkPipeline(b *testing.B) {
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	TuneGC() // as churnwatch run does
	var eventsPerSec []float64
	msgs := synth.Generate(synth.Config{Customers: benchCustomers, Seed: 1, Start: end.Add(-365 * day), End: end})
	b.StopTimer()
	for range b.N {
		e := newEnvWith(b, end, func(c *Config) { c.InternalPartitions, c.SourcePartitions = benchInternal, benchSource })
		e.cfg.BatchWait, e.cfg.MarkInterval = benchBatchWait, benchMarkInterval
		if benchReadAhead > 0 {
			e.cfg.ReadAhead = benchReadAhead
		}
		ms := make([]kafka.Message, len(msgs))
		for i, m := range msgs {
			ms[i] = kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		}
		w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
			BatchSize: 10000, BatchBytes: 1e6, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
		if err := w.WriteMessages(context.Background(), ms...); err != nil {
			b.Fatal(err)
		}
		w.Close()
		adm, err := topics.NewAdmin(e.brokers)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r := e.start()
		waitDrained(b, adm, e.cfg, start)
		e.waitWatermark(end.Add(-5*time.Minute), time.Minute)
		elapsed := time.Since(start)
		b.Logf("watermark reached after %s", elapsed.Round(time.Millisecond))
		b.StopTimer()
		eventsPerSec = append(eventsPerSec, float64(len(msgs))/elapsed.Seconds())
		r.stop(e.t)
		adm.Close()
	}
	sort.Float64s(eventsPerSec)
	b.ReportMetric(eventsPerSec[len(eventsPerSec)/2], "events/s")
	b.ReportMetric(float64(len(msgs)), "events")
}

var (
	benchBatchWait    = envDuration("BENCH_BATCH_WAIT", 20*time.Millisecond)
	benchMarkInterval = envDuration("BENCH_MARK_INTERVAL", 200*time.Millisecond)
	benchReadAhead    = envDuration("BENCH_READ_AHEAD", 0)
	benchCustomers    = envInt("BENCH_CUSTOMERS", 2000)
	benchInternal     = envInt("BENCH_INTERNAL_PARTITIONS", 4)
	benchSource       = envInt("BENCH_SOURCE_PARTITIONS", 3)
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// waitDrained waits until the source stage committed every source offset
// and then the state stage every internal offset written until then
// (watermark marks keep arriving, so the internal topic is never empty).
func waitDrained(b *testing.B, adm *topics.Admin, cfg Config, start time.Time) {
	ctx := context.Background()
	cfg.setDefaults()
	deadline := time.Now().Add(2 * time.Minute)
	caughtUp := func(group string, ends map[string]map[int32]int64) bool {
		ok, err := adm.Committed(ctx, group, ends)
		if time.Now().After(deadline) {
			b.Fatalf("group %s not drained: ends %v, %v", group, ends, err)
		}
		return ok
	}
	srcEnds, err := adm.EndOffsets(ctx, synth.Topics()...)
	if err != nil {
		b.Fatal(err)
	}
	for !caughtUp(cfg.Group+"-source", srcEnds) {
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("source stage drained after %s", time.Since(start).Round(time.Millisecond))
	internalEnds, err := adm.EndOffsets(ctx, cfg.InternalTopic)
	if err != nil {
		b.Fatal(err)
	}
	for !caughtUp(cfg.Group, internalEnds) {
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("state stage drained after %s", time.Since(start).Round(time.Millisecond))
}
