package processor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
)

// fakeClock is a settable wall clock shared by a test and its processor.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock { c := &fakeClock{}; c.set(t); return c }
func (c *fakeClock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

// env is one test's broker (kfake, real Kafka protocol over TCP) and Redis.
type env struct {
	t       testing.TB
	brokers []string
	store   *redisstate.Store
	clock   *fakeClock
	cfg     Config
	writer  *kafka.Writer
	cluster *kfake.Cluster
}

func newEnv(t testing.TB, now time.Time) *env { return newEnvWith(t, now, nil) }

// newEnvWith is newEnv with the configuration adjusted by edit before the
// topics are created.
func newEnvWith(t testing.TB, now time.Time, edit func(*Config)) *env {
	t.Helper()
	rdb, _ := redistest.Start(t)
	return newEnvOn(t, now, rdb, edit)
}

// newEnvOn is newEnvWith over a given Redis (a cluster, say), with the
// broker's options adjusted by opts (a data directory, a port).
func newEnvOn(t testing.TB, now time.Time, rdb redis.UniversalClient, edit func(*Config), opts ...kfake.Opt) *env {
	t.Helper()
	cluster, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(freePort(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	e := &env{t: t, brokers: cluster.ListenAddrs(), store: redisstate.New(rdb, ""), clock: newClock(now), cluster: cluster}
	e.cfg = Config{
		Brokers: e.brokers, CreateTopics: true, InternalPartitions: 4, SourcePartitions: 2,
		MarkInterval: 50 * time.Millisecond, BatchWait: 5 * time.Millisecond, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&e.cfg)
	}
	if testing.Verbose() {
		e.cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: logLevel()}))
	}
	p, err := New(e.cfg, e.store, rules.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.adm.Ensure(context.Background(), TopicSpecs(p.cfg)); err != nil {
		t.Fatal(err)
	}
	p.adm.Close()
	return e
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// running is a processor started by start.
type running struct {
	p      *Processor
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start() *running {
	e.t.Helper()
	p, err := New(e.cfg, e.store, rules.Builtin())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("processor: %v", err)
		}
		r.done <- nil
	case <-time.After(30 * time.Second):
		t.Error("processor did not stop within 30s")
	}
}

// msg is one message for a source topic.
type msg struct {
	topic string
	key   []byte
	value string
}

// produce writes messages to the source topics with the production
// writer, spread over partitions regardless of key, as upstream systems may.
func (e *env) produce(msgs ...msg) {
	e.t.Helper()
	if e.writer == nil {
		e.writer = &kafka.Writer{
			Addr: kafka.TCP(e.brokers...), Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll,
			BatchSize: 10000, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{},
		}
		e.t.Cleanup(func() { e.writer.Close() })
	}
	ms := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		ms[i] = kafka.Message{Topic: m.topic, Key: m.key, Value: []byte(m.value)}
	}
	if err := e.writer.WriteMessages(context.Background(), ms...); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

// evt builds the JSON of an event.
func evt(id, customer string, at time.Time, fields ...any) string {
	m := map[string]any{"id": id, "customer_id": customer, "occurred_at": at.UTC().Format(time.RFC3339Nano)}
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i].(string)] = fields[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// lowestWatermark returns the lowest watermark over the internal
// partitions (zero while one has none).
func (e *env) lowestWatermark() time.Time {
	e.t.Helper()
	var low time.Time
	for p := range e.cfg.InternalPartitions {
		b, err := e.store.Watermark(context.Background(), p)
		if err != nil {
			e.t.Fatal(err)
		}
		if b == nil {
			return time.Time{}
		}
		m, err := decodeMarks(b)
		if err != nil {
			e.t.Fatal(err)
		}
		if low.IsZero() || m.W.Before(low) {
			low = m.W
		}
	}
	return low
}

// waitWatermark waits until every internal partition's watermark reached at.
func (e *env) waitWatermark(at time.Time, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		low := time.Time{}
		ok := true
		for p := range e.cfg.InternalPartitions {
			b, err := e.store.Watermark(context.Background(), p)
			if err != nil {
				e.t.Fatal(err)
			}
			if b == nil {
				ok = false
				break
			}
			m, err := decodeMarks(b)
			if err != nil {
				e.t.Fatal(err)
			}
			if low.IsZero() || m.W.Before(low) {
				low = m.W
			}
			if m.W.Before(at) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("watermark did not reach %s within %s (lowest %s)", at, timeout, low)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alertsOnTopic reads the whole alert topic.
func (e *env) alertsOnTopic() []kafka.Message {
	e.t.Helper()
	return e.readAll("churn-alerts")
}

func (e *env) readAll(topic string) []kafka.Message {
	e.t.Helper()
	conn, err := kafka.Dial("tcp", e.brokers[0])
	if err != nil {
		e.t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range parts {
		c, err := kafka.DialLeader(context.Background(), "tcp", e.brokers[0], topic, p.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		first, last, err := c.ReadOffsets()
		c.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		if last == first {
			continue
		}
		r, err := newReader(e.cfg.kafka(), topic, p.ID, first)
		if err != nil {
			e.t.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.FetchMessage(ctx)
			cancel()
			if err != nil {
				e.t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// matchesOracle checks the alert topic (by id and time) and every
// customer's state against the offline engine run over msgs up to final;
// when names the run in the error.
func (e *env) matchesOracle(t *testing.T, msgs []msg, final time.Time, when string) {
	t.Helper()
	got := parseAlerts(t, e.alertsOnTopic())
	oa, ostates := oracle(t, msgs, final)
	if len(oa) == 0 {
		t.Fatal("the history fires no alert")
	}
	if g, w := keysOf(got), keysOfAlerts(oa); !reflect.DeepEqual(g, w) {
		t.Errorf("alerts %s differ from the offline engine:\n got %v\nwant %v", when, g, w)
	}
	compareStates(t, e, ostates, final)
}

// alertKey is what identifies an alert event: its CloudEvent id and time.
type alertKey struct {
	ID   string
	Time time.Time
}

func parseAlerts(t *testing.T, msgs []kafka.Message) map[string]alerts.CloudEvent {
	t.Helper()
	out := map[string]alerts.CloudEvent{}
	for _, m := range msgs {
		ce, err := alerts.ParseCloudEvent(m.Value)
		if err != nil {
			t.Fatalf("alert is not a CloudEvent: %v: %s", err, m.Value)
		}
		if string(m.Key) != ce.Subject {
			t.Fatalf("alert key %q != subject %q", m.Key, ce.Subject)
		}
		ct := ""
		for _, h := range m.Headers {
			if h.Key == "content-type" {
				ct = string(h.Value)
			}
		}
		if ct != alerts.ContentType {
			t.Fatalf("content-type header %q", ct)
		}
		if prev, ok := out[ce.ID]; ok && prev.Time != ce.Time {
			t.Fatalf("alert %s delivered twice with different times %s and %s", ce.ID, prev.Time, ce.Time)
		}
		out[ce.ID] = ce
	}
	return out
}

func keysOf(as map[string]alerts.CloudEvent) []alertKey {
	var out []alertKey
	for id, ce := range as {
		out = append(out, alertKey{id, ce.Data.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func keysOfAlerts(as []alerts.Alert) []alertKey {
	seen := map[string]bool{}
	var out []alertKey
	for _, a := range as {
		if !seen[a.EventID()] {
			seen[a.EventID()] = true
			out = append(out, alertKey{a.EventID(), a.Time})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// decodeAll validates messages as the source stage would.
func decodeAll(t *testing.T, msgs []msg, now time.Time) []event.Event {
	t.Helper()
	src := DefaultSources()
	var out []event.Event
	for _, m := range msgs {
		e, err := event.Decode([]byte(m.value), src[m.topic], now)
		if err == nil {
			out = append(out, e)
		}
	}
	return out
}

var idSeq atomic.Int64

func nextID(prefix string) string { return prefix + "-" + strconv.FormatInt(idSeq.Add(1), 10) }

// logLevel is the processor's log level under -v: warnings, or
// CHURNWATCH_TEST_LOG=info|debug.
func logLevel() slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(os.Getenv("CHURNWATCH_TEST_LOG"))) != nil {
		return slog.LevelWarn
	}
	return l
}
