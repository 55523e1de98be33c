package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

// loadgenProgress is how often `churnwatch loadgen` prints a progress line.
var loadgenProgress = 10 * time.Second

// loadgenFlags are the settings of `churnwatch loadgen`; each flag has an
// env variable CHURNWATCH_<NAME>.
type loadgenFlags struct {
	rate         float64
	customers    int
	seed         int64
	duration     time.Duration
	historyDays  int
	badEvery     int
	otherKeys    float64
	createTopics bool
	bad          map[string]string // flag → problem with its env value
}

func (f *loadgenFlags) register(fs *flag.FlagSet) {
	// num parses the env variable of a numeric flag (its default when
	// unset); a value that does not parse is reported by validate.
	num := func(name, def string, parse func(string) error) {
		key := strings.ReplaceAll(name, "-", "_")
		if v := env(key, def); parse(v) != nil {
			if f.bad == nil {
				f.bad = map[string]string{}
			}
			f.bad[name] = fmt.Sprintf("--%s: CHURNWATCH_%s=%q is not valid", name, strings.ToUpper(key), v)
			_ = parse(def)
		}
	}
	num("rate", "100", func(s string) (err error) { f.rate, err = strconv.ParseFloat(s, 64); return })
	num("customers", "10000", func(s string) (err error) { f.customers, err = strconv.Atoi(s); return })
	num("seed", "1", func(s string) (err error) { f.seed, err = strconv.ParseInt(s, 10, 64); return })
	num("duration", "0s", func(s string) (err error) { f.duration, err = time.ParseDuration(s); return })
	num("history-days", "0", func(s string) (err error) { f.historyDays, err = strconv.Atoi(s); return })
	num("bad-every", "0", func(s string) (err error) { f.badEvery, err = strconv.Atoi(s); return })
	num("other-keys", "0", func(s string) (err error) { f.otherKeys, err = strconv.ParseFloat(s, 64); return })

	fs.Float64Var(&f.rate, "rate", f.rate, "live events per second (CHURNWATCH_RATE)")
	fs.IntVar(&f.customers, "customers", f.customers, "size of the synthetic population (CHURNWATCH_CUSTOMERS)")
	fs.Int64Var(&f.seed, "seed", f.seed, "seed of the population: the same seed gives the same customers (CHURNWATCH_SEED)")
	fs.DurationVar(&f.duration, "duration", f.duration, "how long to send live events; 0 sends until stopped (CHURNWATCH_DURATION)")
	fs.IntVar(&f.historyDays, "history-days", f.historyDays, "days of history written before the live events; 0 writes none (CHURNWATCH_HISTORY_DAYS)")
	fs.IntVar(&f.badEvery, "bad-every", f.badEvery, "about one message in N is invalid input for the dead-letter topic; 0 sends none (CHURNWATCH_BAD_EVERY)")
	fs.Float64Var(&f.otherKeys, "other-keys", f.otherKeys, "share (0–1) of messages keyed by something other than the customer id (CHURNWATCH_OTHER_KEYS)")
	fs.BoolVar(&f.createTopics, "create-topics", env("create_topics", "true") == "true", "create missing source topics at start (CHURNWATCH_CREATE_TOPICS)")
}

func (f *loadgenFlags) validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(f.bad)) {
		errs = append(errs, errors.New(f.bad[name]))
	}
	if !(f.rate > 0) || f.rate > 1e7 {
		errs = append(errs, fmt.Errorf("--rate %g: want events per second > 0 (CHURNWATCH_RATE)", f.rate))
	}
	if f.customers <= 0 {
		errs = append(errs, fmt.Errorf("--customers %d: want at least 1 (CHURNWATCH_CUSTOMERS)", f.customers))
	}
	if f.duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %s: want 0 (until stopped) or a positive duration such as 10m (CHURNWATCH_DURATION)", f.duration))
	}
	if f.historyDays < 0 {
		errs = append(errs, fmt.Errorf("--history-days %d: want 0 or more (CHURNWATCH_HISTORY_DAYS)", f.historyDays))
	}
	if f.badEvery < 0 {
		errs = append(errs, fmt.Errorf("--bad-every %d: want 0 or more (CHURNWATCH_BAD_EVERY)", f.badEvery))
	}
	if !(f.otherKeys >= 0 && f.otherKeys <= 1) {
		errs = append(errs, fmt.Errorf("--other-keys %g: want a share between 0 and 1 (CHURNWATCH_OTHER_KEYS)", f.otherKeys))
	}
	return errors.Join(errs...)
}

// loadgenCmd is `churnwatch loadgen`: a synthetic population's events
// written to the source topics at a steady rate, optionally after some days
// of its history, for trying out a deployment and its dashboards.
func loadgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f loadgenFlags
	f.register(fs)
	c, err := parseConfig(fs, args, kafkaKeys...) // --brokers and how to reach them
	if err == errUsage {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	fs.Visit(func(fl *flag.Flag) { delete(f.bad, fl.Name) }) // a flag overrides its env variable
	if err := errors.Join(err, f.validate()); err != nil {
		return err
	}
	conn, err := c.kafka()
	if err != nil {
		return err
	}
	if f.createTopics {
		if err := ensureSourceTopics(ctx, conn); err != nil {
			return err
		}
	}
	t := conn.Transport()
	t.MetadataTTL = 2 * time.Second
	w := &kafka.Writer{
		Addr: conn.Addr(), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 10000, BatchBytes: 1e6, BatchTimeout: 2 * time.Millisecond,
		Transport: t,
	}
	defer w.Close()

	now := time.Now().UTC()
	cfg := synth.Config{Customers: f.customers, Seed: f.seed, BadEvery: f.badEvery, OtherKeys: f.otherKeys}
	if f.historyDays > 0 {
		cfg.Start, cfg.End = now.Add(-time.Duration(f.historyDays)*24*time.Hour), now
		t0 := time.Now()
		history := synth.Generate(cfg)
		n, err := writeHistory(ctx, w, history)
		if ctx.Err() != nil {
			fmt.Fprintf(stdout, "loadgen: stopped during the history: %d of %d events written\n", n, len(history))
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "loadgen: history of %d customers over %d days: %d events written in %s\n",
			f.customers, f.historyDays, n, time.Since(t0).Round(time.Millisecond))
	}

	fmt.Fprintf(stdout, "loadgen: sending live events of %d customers at %g/s to %s", f.customers, f.rate, strings.Join(conn.Brokers, ","))
	if f.duration > 0 {
		fmt.Fprintf(stdout, " for %s", f.duration)
	}
	fmt.Fprintln(stdout)
	n, elapsed, err := live(ctx, w, cfg, f.rate, f.duration, func(total int64, rate float64) {
		fmt.Fprintf(stdout, "loadgen: %d events written, %.1f events/s over the last %s\n", total, rate, loadgenProgress)
	})
	fmt.Fprintf(stdout, "loadgen: stopped: %d live events written in %s (%.1f events/s)\n",
		n, elapsed.Round(time.Millisecond), float64(n)/max(elapsed.Seconds(), 1e-9))
	return err
}

// ensureSourceTopics creates the source topics that do not exist yet, as
// `churnwatch run` would create them.
func ensureSourceTopics(ctx context.Context, conn kafkaconn.Conn) error {
	adm, err := topics.Open(conn)
	if err != nil {
		return err
	}
	defer adm.Close()
	var specs []topics.Spec
	for _, s := range processor.TopicSpecs(processor.Config{Kafka: conn}) {
		if slices.Contains(synth.Topics(), s.Name) {
			specs = append(specs, s)
		}
	}
	_, err = adm.Ensure(ctx, specs)
	return err
}

// writeHistory writes msgs in chunks and returns how many were written.
func writeHistory(ctx context.Context, w *kafka.Writer, msgs []synth.Message) (int, error) {
	n, err := synth.Write(ctx, w, msgs)
	if err != nil {
		return n, fmt.Errorf("write history: %w", kafkaconn.WriteError(err))
	}
	return n, nil
}

// live sends live events at rate until ctx ends or, when duration > 0, for
// duration. The generator hands messages to a writer goroutine through a
// bounded queue, so a slow broker slows the generator down (it catches up
// at most one second's worth) instead of piling up memory. Messages already
// generated are still written when the run ends, with a few seconds' grace
// after ctx is cancelled. It returns the number of messages written and
// the time spent.
func live(ctx context.Context, w *kafka.Writer, cfg synth.Config, rate float64, duration time.Duration,
	progress func(total int64, rate float64)) (int64, time.Duration, error) {
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	if duration > 0 {
		genCtx, stopGen = context.WithTimeout(genCtx, duration)
		defer stopGen()
	}
	// Writes outlive ctx by a grace period, so that what was generated
	// before a stop is not lost.
	writeCtx, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(5 * time.Second):
				stopWrites()
			case <-writeCtx.Done():
			}
		case <-writeCtx.Done():
		}
	}()

	queue := make(chan kafka.Message, min(max(1024, int(2*rate)), 100_000))
	type result struct {
		n   int64
		err error
	}
	var written atomic.Int64
	done := make(chan result, 1)
	go func() {
		var failed error
		batch := make([]kafka.Message, 0, 4096)
		for m := range queue {
			if failed != nil {
				continue // drain, so that the generator is never blocked
			}
			batch = append(batch[:0], m)
		more:
			for len(batch) < cap(batch) {
				select {
				case m, ok := <-queue:
					if !ok {
						break more
					}
					batch = append(batch, m)
				default:
					break more
				}
			}
			if err := w.WriteMessages(writeCtx, batch...); err != nil {
				failed = kafkaconn.WriteError(err)
				stopGen()
				continue
			}
			written.Add(int64(len(batch)))
		}
		done <- result{written.Load(), failed}
	}()

	began := time.Now()
	ticker := time.NewTicker(loadgenProgress)
	defer ticker.Stop()
	genDone := make(chan error, 1)
	go func() {
		err := synth.Live(genCtx, cfg, rate, time.Now, func(m synth.Message) error {
			select {
			case queue <- kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}:
				return nil
			case <-genCtx.Done():
				return genCtx.Err()
			}
		})
		close(queue)
		genDone <- err
	}()
	last, lastAt := int64(0), began
	var genErr error
wait:
	for {
		select {
		case genErr = <-genDone:
			break wait
		case t := <-ticker.C:
			n := written.Load()
			progress(n, float64(n-last)/t.Sub(lastAt).Seconds())
			last, lastAt = n, t
		}
	}
	r := <-done
	elapsed := time.Since(began)
	if r.err != nil {
		if ctx.Err() != nil && errors.Is(r.err, context.Canceled) {
			return r.n, elapsed, nil // stopped before the grace period let the last batch through
		}
		return r.n, elapsed, fmt.Errorf("write live events: %w", r.err)
	}
	if genErr != nil && genCtx.Err() == nil {
		return r.n, elapsed, genErr
	}
	return r.n, elapsed, nil
}
