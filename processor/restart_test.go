package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/localredis"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/topics"
)

// outage takes one part of the pipeline down in the middle of a stream and
// brings it back.
type outage struct {
	down, up func()
	// notReady is what /readyz names while the part is down.
	notReady string
	// retried is the log line of the operation that fails and is retried
	// while the part is down.
	retried string
	// brokerUp: the broker stays up while the part is down, so upstream
	// still writes events and the processor's commits can be watched.
	brokerUp bool
	// store, when set, is the processor's (e.store is then only the test's).
	store *redisstate.Store
}

// TestRedisRestartMidStream stops redis-server (AOF on) while the processor
// works through a backlog and live events, and starts it again on the same
// port and data directory: the state stage retries, /readyz answers 503
// while Redis is down and 200 after, and in the end every alert and every
// customer's state equals an uninterrupted offline run.
//
// SIGTERM is a clean shutdown: redis-server writes and syncs its AOF before
// it exits, so the everysec policy (Redis's default, and the one of
// docker-compose.yml) loses nothing. SIGKILL is a crash: the processor
// commits an offset once Redis acknowledged the state of its batch, so the
// AOF must hold every acknowledged write; only appendfsync always syncs
// before answering (everysec may answer a write whose buffer it has not
// written yet while a slow fsync is pending, and loses it if killed then).
func TestRedisRestartMidStream(t *testing.T) {
	for _, c := range []struct {
		name  string
		sig   os.Signal
		fsync string
	}{
		{"SIGTERM", syscall.SIGTERM, "everysec"},
		{"SIGKILL", syscall.SIGKILL, "always"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdb, srv := redistest.StartServer(t, localredis.Options{AppendOnly: true, AppendFsync: c.fsync})
			// The processor has a client of its own, as in production: after
			// failed dials go-redis answers new connections with the last
			// dial error until a probe, once a second, gets through. The
			// processor retries that; the test's reads of Redis would not.
			own := redis.NewClient(&redis.Options{Addr: srv.Addr})
			t.Cleanup(func() { own.Close() })
			e := newEnvOn(t, end, rdb, nil)
			runThroughOutage(t, e, outage{
				store: redisstate.New(own, ""),
				down: func() {
					if err := srv.Halt(c.sig); err != nil {
						t.Fatal(err)
					}
				},
				up: func() {
					if err := srv.Resume(context.Background()); err != nil {
						t.Fatal(err)
					}
				},
				notReady: "redis",
				retried:  "process batch failed; retrying",
				brokerUp: true,
			})
		})
	}
}

// TestBrokerRestartMidStream closes the broker while the processor works
// through a backlog and live events, and starts a new one on the same port
// and data directory: the processor retries, leaves and rejoins its
// consumer groups, /readyz answers 503 while the broker is down and 200
// after, and in the end no alert is missing (copies of one are allowed:
// alerts are at least once) and every customer's state equals an
// uninterrupted offline run.
//
// kfake with DataDir persists, as a Kafka broker does, topics with their
// configurations, records and committed offsets (Close writes all of it);
// the test checks the committed offsets survived, since the processor
// relies on them.
func TestBrokerRestartMidStream(t *testing.T) {
	rdb, _ := redistest.Start(t)
	port := freePort(t)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(t.TempDir())}
	e := newEnvOn(t, end, rdb, nil, opts...)
	var before map[groupPartition]topics.Lag
	runThroughOutage(t, e, outage{
		down: func() {
			before = e.lags()
			e.cluster.Close()
		},
		up: func() {
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatalf("restart the broker on port %d: %v", port, err)
			}
			t.Cleanup(c.Close)
			e.cluster = c
			after := e.lags()
			for gp, l := range before {
				if after[gp].Committed < l.Committed {
					t.Fatalf("the restarted broker lost a committed offset: %+v at %d, %d before", gp, after[gp].Committed, l.Committed)
				}
			}
		},
		notReady: "kafka",
		retried:  "consumer group join failed; retrying",
	})
}

type groupPartition struct {
	group, topic string
	partition    int32
}

// lags returns the committed offsets and lags of both groups (of
// processors that joined them).
func (e *env) lags() map[groupPartition]topics.Lag {
	e.t.Helper()
	adm, err := topics.NewAdmin(e.brokers)
	if err != nil {
		e.t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	group := e.group()
	lags, err := adm.Lags(ctx, group+"-source", group)
	if err != nil {
		e.t.Fatalf("read committed offsets: %v", err)
	}
	out := make(map[groupPartition]topics.Lag, len(lags))
	seen := map[string]bool{}
	for _, l := range lags {
		out[groupPartition{l.Group, l.Topic, l.Partition}] = l
		seen[l.Group] = true
	}
	if !seen[group] || !seen[group+"-source"] {
		e.t.Fatalf("committed offsets of groups %v, want %s and %s-source", seen, group, group)
	}
	return out
}

// group is the state stage's consumer group.
func (e *env) group() string {
	c := e.cfg
	c.setDefaults()
	return c.Group
}

// runThroughOutage sends a year of history, the last weeks of it live,
// through a processor, and takes a part down and up again (o) while both
// the backlog and live events are in progress. It checks that the
// processor pauses and retries, is not ready while the part is down and is
// ready again after, and that the alerts and states equal the offline
// engine's.
func runThroughOutage(t *testing.T, e *env, o outage) {
	back, _ := backfillHistory()
	msgs := append(back, liveHistory()...)
	sortByTime(msgs)
	final := end.Add(-5 * time.Minute)
	cut := end.Add(-20 * day)
	var backlog []msg
	for len(msgs) > len(backlog) && occurredAt(msgs[len(backlog)]).Before(cut) {
		backlog = append(backlog, msgs[len(backlog)])
	}
	live := liveChunks(msgs[len(backlog):])
	third := len(live) / 3

	logs := &syncbuf.Buffer{}
	var out io.Writer = logs
	level := slog.LevelWarn
	if testing.Verbose() {
		out, level = io.MultiWriter(logs, tWriter{t}), min(level, logLevel())
	}
	e.cfg.Logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	e.cfg.BatchSize = 50 // the backlog lasts long enough for the outage to hit it
	e.clock.set(occurredAt(live[0][0]))
	e.produce(backlog...)
	reads := e.store
	if o.store != nil {
		e.store = o.store
	}
	r := e.start()
	e.store = reads
	readyz := admin.API{Ready: r.p.Ready}.Handler()
	ready := func() error {
		rec := httptest.NewRecorder()
		readyz.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("%d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		return nil
	}
	written := func() float64 { return testutil.ToFloat64(r.p.Metrics().StatesWritten) }
	running := func() {
		t.Helper()
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("the processor stopped: %v", err)
		default:
		}
	}

	eventually(t, time.Minute, "ready and writing states", func() bool { return ready() == nil && written() > 0 })
	sendLive(e, live[:third])
	if wm := e.lowestWatermark(); !wm.Before(cut.Add(-30 * day)) {
		t.Fatalf("the backlog was nearly done (watermark %s) before the outage: not mid-stream", wm)
	} else {
		t.Logf("outage with the watermark at %s", wm)
	}

	retries := func() int { return strings.Count(logs.String(), o.retried) }
	n := retries()
	o.down()
	eventually(t, 30*time.Second, "/readyz failing on "+o.notReady, func() bool {
		err := ready()
		return err != nil && strings.Contains(err.Error(), o.notReady)
	})
	eventually(t, 30*time.Second, "a failure retried: "+o.retried, func() bool { return retries() > n })
	if o.brokerUp {
		// Live events go on arriving; the source stage forwards them, the
		// state stage fails on them and retries, and commits nothing.
		held := e.lags()
		sendLive(e, live[third:2*third])
		eventually(t, 30*time.Second, "the live events forwarded", func() bool {
			for gp, l := range e.lags() {
				if gp.group == e.group()+"-source" && l.Lag > 0 {
					return false
				}
			}
			return true
		})
		n = retries()
		eventually(t, 30*time.Second, "a failure retried after the live events", func() bool { return retries() > n })
		waiting := int64(0)
		for gp, l := range e.lags() {
			if gp.group != e.group() {
				continue
			}
			if l.Committed != held[gp].Committed {
				t.Errorf("%s/%d committed at %d while down (%d before): past events whose state was not written", gp.topic, gp.partition, l.Committed, held[gp].Committed)
			}
			waiting += l.Lag
		}
		if waiting == 0 {
			t.Error("no event waited for the state stage while down")
		}
	}
	running()
	if err := ready(); err == nil {
		t.Fatal("ready while down")
	}
	o.up()
	eventually(t, time.Minute, "/readyz answering 200 again", func() bool { return ready() == nil })
	running()
	if !o.brokerUp {
		sendLive(e, live[third:2*third])
	}
	sendLive(e, live[2*third:])
	e.clock.set(end)
	e.waitWatermark(final, 2*time.Minute)
	running()

	e.matchesOracle(t, msgs, final, "after the outage")
}

// eventually waits up to timeout for cond.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// occurredAt is the event time of a valid message.
func occurredAt(m msg) time.Time {
	e, err := event.Decode([]byte(m.value), DefaultSources()[m.topic], end.Add(time.Hour))
	if err != nil {
		panic(err)
	}
	return e.OccurredAt
}

// liveChunks groups time-ordered messages into runs of less than half an
// hour of event time, each sent as it happens (sendLive).
func liveChunks(msgs []msg) [][]msg {
	var out [][]msg
	for i := 0; i < len(msgs); {
		j := i + 1
		for j < len(msgs) && occurredAt(msgs[j]).Sub(occurredAt(msgs[i])) < 30*time.Minute {
			j++
		}
		out = append(out, msgs[i:j])
		i = j
	}
	return out
}

// sendLive produces chunks as live traffic: the wall clock stands at the
// first event of each chunk when it is sent, so no event is ever behind the
// watermark, and none is more than event.MaxFuture ahead of the clock.
func sendLive(e *env, chunks [][]msg) {
	for _, c := range chunks {
		e.clock.set(occurredAt(c[0]))
		e.produce(c...)
	}
}

// TestSourceRewindAppliesNothingTwice: the source stage forwards batches
// faster than it commits their offsets, so a crash leaves its group behind
// what the internal topic already holds, and the restarted stage forwards
// those events again. Here the source group is rewound to the start of
// every partition after a year of history went through: everything is
// forwarded a second time, long after the state stage pruned the event ids
// it remembers, and the states and alerts still equal the offline engine's.
func TestSourceRewindAppliesNothingTwice(t *testing.T) {
	t.Parallel()
	msgs, _ := backfillHistory()
	final := end.Add(-5 * time.Minute)
	e := newEnv(t, end)
	e.produce(msgs...)
	r := e.start()
	e.waitWatermark(final, 2*time.Minute)
	e.waitCaughtUp(time.Minute)
	e.matchesOracle(t, msgs, final, "before the rewind")
	r.stop(t)

	e.rewindSource()
	r = e.start()
	e.waitCaughtUp(time.Minute)
	e.matchesOracle(t, msgs, final, "after the source was forwarded again")

	// The admin API words the risk reasons of the lapsed VIP, which states
	// do not keep, as the rules do.
	b, err := r.p.Customer(context.Background(), "lapsed")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Risk    int      `json:"risk_score"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	_, states := oracle(t, msgs, final)
	want, err := engine.New(rules.Builtin(), nil).Explain(states["lapsed"])
	if err != nil || len(want) == 0 || got.Risk == 0 || !reflect.DeepEqual(got.Reasons, want) {
		t.Fatalf("customer API: risk %d, reasons %q; want the offline engine's %q (%v)", got.Risk, got.Reasons, want, err)
	}
}

// rewindSource commits the start of every source partition for the source
// stage's group: what a crash of the source stage before any commit leaves.
func (e *env) rewindSource() {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, "purchases", "support-tickets", "usage", "customers", "feedback")
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := adm.CommitOffsets(ctx, e.group()+"-source", starts.Offsets())
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		e.t.Fatalf("rewind the source group: %v", err)
	}
}

// waitCaughtUp waits until both groups committed the end of every
// partition they read.
func (e *env) waitCaughtUp(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		behind := 0
		for _, l := range e.lags() {
			behind += int(l.Lag)
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("still %d records behind after %s", behind, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPartlyFailedWriteAppliesInOrder writes internal events the way a
// source stage does when a write of two batches to one partition failed in
// its first batch only, and then retried the whole write: the second batch
// arrives first, then both; and then as a restarted one does, forwarding
// again from its last commit. The events are 100 days old, long past the
// event ids a state remembers, so only their origins can tell. Each is
// applied once, none is lost, and the overtaking ones are counted.
func TestPartlyFailedWriteAppliesInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, end)
	r := e.start()
	e.waitWatermark(end.Add(-10*time.Minute), time.Minute) // a watermark record exists: the chain is strict
	const customer = "cust-chained"
	src := event.SourceKey("elsewhere", [16]byte{1}, 0)
	at := end.Add(-100 * day)
	rec := func(offset, prev int64) kafka.Message {
		ev := event.Event{Type: event.Purchase, ID: fmt.Sprintf("p%d", offset), CustomerID: customer,
			OccurredAt: at.Add(time.Duration(offset) * time.Hour), Amount: 10}
		return kafka.Message{Key: []byte(customer), Value: ev.AppendBinary(nil, event.Origin{Source: src, Offset: offset, Prev: prev})}
	}
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: "churnwatch-events", Balancer: &internalBalancer{e.cfg.InternalPartitions},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	ctx := context.Background()
	for _, call := range [][]kafka.Message{
		{rec(30, 20), rec(40, 30)},                           // the first attempt: its batch of 10 and 20 failed
		{rec(10, -1), rec(20, 10), rec(30, 20), rec(40, 30)}, // the retry
		{rec(50, 40)},              // the next write
		{rec(50, 40), rec(60, 50)}, // forwarded again after a restart, and the next
	} {
		if err := w.WriteMessages(ctx, call...); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.store.Customer(ctx, customer)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil && c.Purchases.Last.Equal(at.Add(60*time.Hour)) {
			if c.Purchases.Count != 6 || c.Purchases.Total != 60 {
				t.Fatalf("purchases %d, total %g: want each of the 6 once", c.Purchases.Count, c.Purchases.Total)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last purchase did not arrive: %+v", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := r.p.Metrics()
	if got := testutil.ToFloat64(m.InternalDropped.WithLabelValues(overtook)); got != 2 {
		t.Errorf("%s: %g dropped, want 2", overtook, got)
	}
	if got := testutil.ToFloat64(m.InternalDropped.WithLabelValues(forwardedAgain)); got != 1 {
		t.Errorf("%s: %g dropped, want 1", forwardedAgain, got)
	}
}
