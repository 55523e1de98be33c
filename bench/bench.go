// Package bench measures churnwatch side by side in one run, on this
// machine: a synthetic population written into an embedded Kafka-protocol
// broker (kfake, over TCP) is read by
//
//   - a bare consume-and-decode loop (the ceiling: no state at all),
//   - the real processor against a real redis-server (end to end: decode,
//     state in Redis, rules, alerts on the alert topic), and
//   - a per-event variant: the usual design, one Redis read and one write
//     per event, through the same state and engine code,
//
// and reports events per second, their ratios, and Redis memory per
// customer. `churnwatch bench` prints the table.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/localredis"
	"github.com/churnwatch/churnwatch/internal/subproc"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

// Options of a run; zero values take the defaults.
type Options struct {
	Customers          int // default 100,000
	Days               int // history per customer, default 30
	InternalPartitions int // default 4
	SourcePartitions   int // default 3
	// NaiveLimit caps the events the per-event variant processes (it is
	// slow); its rate is measured on that prefix. Default 200,000.
	NaiveLimit int
	// Timers is how many due timers the timer phase fires (default 100,000);
	// LatencyRate and LatencyFor the offered load of the latency phase
	// (default 10,000 events/s for 20 s). A negative value skips the phase.
	Timers int
	// Restart is how many customers Redis holds when the restart phase
	// starts a processor (default 1,000,000).
	Restart     int
	LatencyRate float64
	LatencyFor  time.Duration
	// CPUProfile, when set, receives a CPU profile of ProfilePhase: "e2e"
	// (the default), "timers" or "latency".
	CPUProfile   io.Writer
	ProfilePhase string
	// StateCache is the processor's per-partition state cache (0: its default).
	StateCache int
	// BatchSize is the processor's batch bound (0: its default).
	BatchSize int
	// Binary, when set, is a churnwatch executable: the end-to-end phase
	// runs the processor as `Binary run`, a process of its own, instead of
	// in this one (then StateCache, BatchSize and a CPU profile of that
	// phase do not apply to it).
	Binary string
	Out    io.Writer
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Customers == 0 {
		o.Customers = 100000
	}
	if o.Days == 0 {
		o.Days = 30
	}
	if o.InternalPartitions == 0 {
		o.InternalPartitions = 4
	}
	if o.SourcePartitions == 0 {
		o.SourcePartitions = 3
	}
	if o.NaiveLimit == 0 {
		o.NaiveLimit = 200000
	}
	if o.Timers == 0 {
		o.Timers = 100000
	}
	if o.Restart == 0 {
		o.Restart = 1000000
	}
	if o.LatencyRate == 0 {
		o.LatencyRate = 10000
	}
	if o.LatencyFor == 0 {
		o.LatencyFor = 20 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = quiet()
	}
}

// Result holds the figures of a run.
type Result struct {
	Customers, Events     int
	Bare, EndToEnd, Naive float64 // events per second
	NaiveEvents           int
	RedisBytesPerCustomer float64
	PeakRSS               int64 // bytes, of this whole process (generator included)
	TimersFired           time.Duration
	P50, P99              time.Duration
	LatencyAlerts         int
	RestartToFirst        time.Duration
	RestartBytesPerCust   float64 // Redis used_memory over the customers of the restart phase
	// Commands counts the Redis commands of the end-to-end phase per event,
	// by command (INFO commandstats; the bench's own few polls included).
	Commands map[string]float64
	// Usage is the end-to-end phase's CPU per process and the processor's
	// peak memory; nil when the processor ran in this process.
	Usage *Usage
}

// env is one measurement's broker and Redis.
type env struct {
	brokers []string
	cluster *kfake.Cluster
	redis   *localredis.Server
	rdb     *redis.Client
	once    sync.Once
}

func newEnv(ctx context.Context) (*env, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		return nil, err
	}
	rs, err := localredis.Start(ctx, localredis.Options{})
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("the benchmark needs redis-server (apt-get install redis-server): %w", err)
	}
	return &env{brokers: cluster.ListenAddrs(), cluster: cluster, redis: rs, rdb: redis.NewClient(&redis.Options{Addr: rs.Addr})}, nil
}

func (e *env) close() {
	e.once.Do(func() {
		e.rdb.Close()
		e.redis.Stop()
		e.cluster.Close()
	})
}

// Run generates the population, writes it and measures the three readers.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	out := o.Out
	now := time.Now().UTC().Truncate(time.Second)
	t0 := time.Now()
	msgs := synth.Generate(synth.Config{Customers: o.Customers, Seed: 1, Start: now.Add(-time.Duration(o.Days) * 24 * time.Hour), End: now})
	fmt.Fprintf(out, "generated %d events of %d customers over %d days in %s\n", len(msgs), o.Customers, o.Days, since(t0))
	res := &Result{Customers: o.Customers, Events: len(msgs)}

	e, err := newEnv(ctx)
	if err != nil {
		return nil, err
	}
	defer e.close()
	cfg := processor.Config{
		Brokers: e.brokers, Group: "bench", CreateTopics: true, InternalPartitions: o.InternalPartitions,
		SourcePartitions: o.SourcePartitions, MarkInterval: 200 * time.Millisecond, Logger: o.Logger,
		StateCache: o.StateCache, BatchSize: o.BatchSize,
	}
	adm, err := topics.NewAdmin(e.brokers)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	if _, err := adm.Ensure(ctx, processor.TopicSpecs(cfg)); err != nil {
		return nil, err
	}
	t0 = time.Now()
	if err := write(ctx, e.brokers, msgs); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "written to the broker in %s\n", since(t0))

	if res.Bare, err = bare(ctx, e.brokers, len(msgs)); err != nil {
		return nil, fmt.Errorf("bare loop: %w", err)
	}
	fmt.Fprintf(out, "bare consume+decode   %10.0f events/s\n", res.Bare)

	baseline, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return nil, err
	}
	res.EndToEnd, res.Usage, res.Commands, err = endToEnd(ctx, e, adm, cfg, now, out, o.profiler("e2e"), o.Binary)
	if err != nil {
		return nil, fmt.Errorf("end to end: %w", err)
	}
	fmt.Fprintf(out, "end to end            %10.0f events/s\n", res.EndToEnd)
	used, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return nil, err
	}
	res.RedisBytesPerCustomer = float64(used-baseline) / float64(o.Customers)
	res.PeakRSS = subproc.PeakRSS("self")

	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	res.NaiveEvents = min(o.NaiveLimit, len(msgs))
	if res.Naive, err = naive(ctx, e.brokers, e.rdb, res.NaiveEvents, now); err != nil {
		return nil, fmt.Errorf("per-event variant: %w", err)
	}
	fmt.Fprintf(out, "per-event round trips %10.0f events/s (first %d events)\n", res.Naive, res.NaiveEvents)
	e.close()

	if o.Timers > 0 {
		if res.TimersFired, err = Timers(ctx, o.Timers, o.profiler("timers")); err != nil {
			return nil, fmt.Errorf("timers: %w", err)
		}
		fmt.Fprintf(out, "%d due timers fired in %s\n", o.Timers, res.TimersFired.Round(time.Millisecond))
	}
	if o.Restart > 0 {
		if res.RestartToFirst, res.RestartBytesPerCust, err = Restart(ctx, o.Restart); err != nil {
			return nil, fmt.Errorf("restart: %w", err)
		}
		fmt.Fprintf(out, "start to first event with %d customers in Redis: %s (%.0f bytes each)\n", o.Restart,
			res.RestartToFirst.Round(time.Millisecond), res.RestartBytesPerCust)
	}
	if o.LatencyRate > 0 {
		if res.P50, res.P99, res.LatencyAlerts, err = Latency(ctx, o.Customers, o.LatencyRate, o.LatencyFor, o.profiler("latency")); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		fmt.Fprintf(out, "event→alert at %.0f events/s: p50 %s, p99 %s (%d alerts)\n", o.LatencyRate, res.P50, res.P99, res.LatencyAlerts)
	}
	return res, nil
}

// Profiler is called by a phase when its measured interval begins; the
// function it returns is called when the interval ends. A nil Profiler
// does nothing.
type Profiler func() (stop func())

func (p Profiler) start() (stop func()) {
	if p == nil {
		return func() {}
	}
	return p()
}

// profiler profiles phase into o.CPUProfile when it is the phase asked for.
func (o *Options) profiler(phase string) Profiler {
	want := o.ProfilePhase
	if want == "" {
		want = "e2e"
	}
	if o.CPUProfile == nil || want != phase {
		return nil
	}
	return func() func() {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			o.Logger.Error("cpu profile", "err", err)
			return func() {}
		}
		return pprof.StopCPUProfile
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func write(ctx context.Context, brokers []string, msgs []synth.Message) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 10000, BatchBytes: 1e6, BatchTimeout: 2 * time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	_, err := synth.Write(ctx, w, msgs)
	return err
}

// eachPartition runs fn concurrently for every partition of the source
// topics, with a reader at the first offset.
func eachPartition(ctx context.Context, brokers []string, fn func(ctx context.Context, r *kafka.Reader, typ event.Type, end int64) error) error {
	adm, err := topics.NewAdmin(brokers)
	if err != nil {
		return err
	}
	ends, err := adm.EndOffsets(ctx, synth.Topics()...)
	adm.Close()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for topic, parts := range ends {
		for p, end := range parts {
			if end == 0 {
				continue
			}
			g.Go(func() error {
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: int(p), MinBytes: 1,
					MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, QueueCapacity: 4096})
				defer r.Close()
				if err := r.SetOffset(kafka.FirstOffset); err != nil {
					return err
				}
				return fn(gctx, r, processor.DefaultSources()[topic], end)
			})
		}
	}
	return g.Wait()
}

// errEnough stops the readers of the per-event variant.
var errEnough = errors.New("enough events")

// bare reads and decodes every event, nothing else: the ceiling.
func bare(ctx context.Context, brokers []string, n int) (float64, error) {
	start := time.Now()
	var count atomic.Int64
	err := eachPartition(ctx, brokers, func(ctx context.Context, r *kafka.Reader, typ event.Type, end int64) error {
		now := time.Now()
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return err
			}
			event.Decode(m.Value, typ, now) //nolint:errcheck // invalid events are decoded too: that is the work
			count.Add(1)
			if m.Offset+1 >= end {
				return nil
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if int(count.Load()) != n {
		return 0, fmt.Errorf("read %d events, want %d", count.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// endToEnd runs the processor until both stages committed everything and
// the watermark reached the wall clock: in this process, or, when bin is
// set, as `bin run`, a process of its own whose CPU and memory are then
// reported apart from the broker's and Redis's.
func endToEnd(ctx context.Context, e *env, adm *topics.Admin, cfg processor.Config, now time.Time, out io.Writer, prof Profiler, bin string) (float64, *Usage, map[string]float64, error) {
	store := redisstate.New(e.rdb, "")
	srcEnds, err := adm.EndOffsets(ctx, synth.Topics()...)
	if err != nil {
		return 0, nil, nil, err
	}
	n := int64(0)
	for _, ps := range srcEnds {
		for _, end := range ps {
			n += end
		}
	}
	redis0, err := redisCPU(ctx, e.rdb)
	if err != nil {
		return 0, nil, nil, err
	}
	self0 := selfCPU()
	if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return 0, nil, nil, err
	}
	var (
		r     *running
		cmd   *exec.Cmd
		admin string
		log   syncbuf.Buffer
	)
	stop := prof.start()
	t0 := time.Now()
	if bin == "" {
		processor.TuneGC()
		cfg.Metrics = metrics.New()
		r, err = start(ctx, cfg, store)
	} else {
		r, cmd, admin, err = startExternal(bin, e, cfg, &log)
	}
	if err != nil {
		stop()
		return 0, nil, nil, err
	}
	defer r.stop()
	err = r.drain(ctx, adm, cfg.Group, srcEnds, store, now)
	stop()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w\n%s", err, log.String())
	}
	rate := float64(n) / time.Since(t0).Seconds()
	var written, fired float64
	var u *Usage
	if bin == "" {
		written, fired = testutil.ToFloat64(cfg.Metrics.StatesWritten), testutil.ToFloat64(cfg.Metrics.TimersFired)
	} else {
		pid := cmd.Process.Pid
		u = &Usage{ProcessorRSS: subproc.PeakRSS(strconv.Itoa(pid)), Processor: subproc.CPUSeconds(pid), Rest: selfCPU() - self0}
		redis1, err := redisCPU(ctx, e.rdb)
		if err != nil {
			return 0, nil, nil, err
		}
		u.Redis = redis1 - redis0
		c, err := counters(ctx, admin, "churnwatch_states_written_total", "churnwatch_timers_fired_total")
		if err != nil {
			return 0, nil, nil, fmt.Errorf("read the processor's metrics: %w", err)
		}
		written, fired = c["churnwatch_states_written_total"], c["churnwatch_timers_fired_total"]
		perEvent := func(s float64) float64 { return s / float64(n) * 1e6 }
		fmt.Fprintf(out, "processor process: peak RSS %d MiB; CPU per event: processor %.1f µs, redis-server %.1f µs, broker and bench %.1f µs\n",
			u.ProcessorRSS>>20, perEvent(u.Processor), perEvent(u.Redis), perEvent(u.Rest))
	}
	fmt.Fprintf(out, "state stage: %.2f states written and %.2f timers fired per event\n", written/float64(n), fired/float64(n))
	calls, err := commandStats(ctx, e.rdb)
	if err != nil {
		return 0, nil, nil, err
	}
	perEvent := make(map[string]float64, len(calls))
	for c, k := range calls {
		perEvent[c] = float64(k) / float64(n)
	}
	fmt.Fprintf(out, "Redis commands per event: %s\n", FormatCommands(perEvent))
	return rate, u, perEvent, nil
}

// naive is the usual design: per event, read the customer's state from
// Redis, apply the event with the same engine, write the state back.
func naive(ctx context.Context, brokers []string, rdb *redis.Client, limit int, now time.Time) (float64, error) {
	eng := engine.New(rules.Builtin(), nil)
	var count atomic.Int64
	var locks stripes // one writer per customer: partitions of different topics share customers
	start := time.Now()
	err := eachPartition(ctx, brokers, func(ctx context.Context, r *kafka.Reader, typ event.Type, end int64) error {
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return err
			}
			if count.Add(1) > int64(limit) {
				return errEnough
			}
			ev, err := event.Decode(m.Value, typ, now)
			if err == nil {
				if err := applyOne(ctx, rdb, eng, locks.of(ev.CustomerID), ev, m.Offset); err != nil {
					return err
				}
			}
			if m.Offset+1 >= end {
				return nil
			}
		}
	})
	if err != nil && !errors.Is(err, errEnough) {
		return 0, err
	}
	return float64(min(int(count.Load()), limit)) / time.Since(start).Seconds(), nil
}

// applyOne reads a customer's state (one GET), applies ev and writes the
// state back (one SET), with the processor's state codec.
func applyOne(ctx context.Context, rdb *redis.Client, eng *engine.Engine, mu *sync.Mutex, ev event.Event, offset int64) error {
	mu.Lock()
	defer mu.Unlock()
	key := "naive:" + ev.CustomerID
	c := state.New(ev.CustomerID)
	b, err := rdb.Get(ctx, key).Bytes()
	switch {
	case err == nil:
		if c, err = state.Unmarshal(ev.CustomerID, b); err != nil {
			return err
		}
	case !errors.Is(err, redis.Nil):
		return err
	}
	c.Offset = -1 // offsets of different topics are not comparable here; event ids de-duplicate
	c.Receive(ev, offset)
	if err := eng.Advance(c, ev.OccurredAt, func(alerts.Alert) {}); err != nil {
		return err
	}
	return rdb.Set(ctx, key, c.AppendBinary(nil), 0).Err()
}

// stripes are per-customer locks, by hash.
type stripes [256]sync.Mutex

func (s *stripes) of(id string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &s[h%uint32(len(s))]
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO memory has no used_memory")
}
