package crashtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/churnwatch/churnwatch/internal/bin"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/internal/subproc"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

var (
	flagEvents  = flag.Int("crash.events", 50000, "events in the backfill (a synthetic population's history, with invalid messages and re-sends)")
	flagKills   = flag.Int("crash.kills", 5, "how many times the processor is killed with SIGKILL before the run that may finish")
	flagSeed    = flag.Int64("crash.seed", 0, "seed of the events and of the kill delays; 0 picks one, printed so that a run can be replayed")
	flagExpire  = flag.Float64("crash.expire", 0.2, "share of the restarts, chosen at random, that leave the killed instance's group members to the broker's session timeout (10 s) instead of removing them")
	flagBuild   = flag.String("crash.build-flags", "", "extra flags of the go build of the processor, such as -race")
	flagDelay   = flag.Duration("crash.max-delay", 700*time.Millisecond, "longest delay before a kill (the shortest is 3 ms)")
	flagTimeout = flag.Duration("crash.timeout", 0, "how long the last run may take to process everything; 0 means 2 minutes plus 1 s per 2,000 events")
)

const (
	sourcePartitions   = 3
	internalPartitions = 4
	stateGroup         = "churnwatch"
	sourceGroup        = "churnwatch-source"
	internalTopic      = "churnwatch-events"
	lateness           = 5 * time.Minute
	alertsTopic        = "churn-alerts"
	dlqTopic           = "churn-dlq"
	minDelay           = 3 * time.Millisecond // the shortest delay before a kill
)

// kill is what one SIGKILL interrupted.
type kill struct {
	afterStart time.Duration
	// The kill came delay after anchor: the start of the process, both
	// consumer groups joined, or the watermark moving in this run.
	anchor string
	delay  time.Duration
	// Committed offsets (summed over partitions) and end offsets when the
	// process died; -1 when unknown.
	srcCommitted, srcEnd int64
	intCommitted, intEnd int64
	watermark            time.Time // lowest over the internal partitions; zero while one has none
	busy                 bool      // events were left to read or to apply
	evicted              int       // dead group members removed; -1: left to expire
}

func (k kill) String() string {
	wm := "none yet"
	if !k.watermark.IsZero() {
		wm = k.watermark.Format(time.RFC3339)
	}
	activity := "idle"
	if k.busy {
		activity = "busy"
	}
	restart := fmt.Sprintf("%d dead members removed", k.evicted)
	if k.evicted < 0 {
		restart = "dead members left to the session timeout"
	}
	when := k.afterStart.Round(time.Millisecond).String() + " after start"
	if k.anchor != "start" {
		when += fmt.Sprintf(" (%s after %s)", k.delay.Round(time.Millisecond), k.anchor)
	}
	return fmt.Sprintf("%s: source offsets %d/%d committed, internal %d/%d, watermark %s; %s; %s",
		when, k.srcCommitted, k.srcEnd, k.intCommitted, k.intEnd, wm, activity, restart)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds churnwatch and kills it several times: not in -short")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("seed %d (replay with -crash.seed %d)", seed, seed)
	began := time.Now()
	sum := &summary{seed: seed}
	t.Cleanup(func() { t.Log(sum.String(t.Failed(), time.Since(began))) })

	r := newRig(t)
	// The backfill: history up to an hour ago, written before any processor
	// runs.
	now := time.Now().UTC().Truncate(time.Second)
	end := now.Add(-time.Hour)
	msgs, population := backfill(*flagEvents, seed, end)
	in := decodeInput(msgs, now)
	sum.events, sum.valid, sum.invalid, sum.population, sum.end = len(msgs), len(in.events), len(in.invalid), population, end
	srcEnds := r.write(msgs)
	sum.prepared = time.Since(began)
	r.waitBuilt()
	sum.built = time.Since(began)

	crashes := time.Now()
	sum.kills = r.crash(seed, *flagKills, in.first(), end)
	final := r.finish(srcEnds, *flagKills+1)
	sum.finalRun = time.Since(final.started)
	sum.crashes = time.Since(crashes)

	compared := time.Now()
	r.verify(in, sum)
	sum.compare = time.Since(compared)
}

// rig is one test's broker (kfake, over TCP), Redis (a redis-server) and
// processor binary.
type rig struct {
	t        *testing.T
	ctx      context.Context
	brokers  []string
	redisURL string
	adm      *topics.Admin
	cl       *kgo.Client
	store    *redisstate.Store
	built    chan struct{} // closed once the binary is built
	bin      string
	buildErr error
	log      *procLog
}

// newRig starts the broker and Redis, creates the topics as `churnwatch
// run` would, and starts building the binary.
func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, ctx: context.Background(), built: make(chan struct{})}
	dir := t.TempDir()
	go func() {
		defer close(r.built)
		r.bin, r.buildErr = subproc.Build(dir, strings.Fields(*flagBuild))
	}()
	t.Cleanup(func() { <-r.built }) // before dir is removed
	log, err := newProcLog(filepath.Join(dir, "churnwatch.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.log = log
	failWithLog(t, log)

	rdb, srv := redistest.Start(t)
	r.store = redisstate.New(rdb, "")
	r.redisURL = os.Getenv("REDIS_URL")
	if srv != nil {
		r.redisURL = "redis://" + srv.Addr + "/0"
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	r.brokers = cluster.ListenAddrs()
	if r.adm, err = topics.NewAdmin(r.brokers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.adm.Close)
	if r.cl, err = kgo.NewClient(kgo.SeedBrokers(r.brokers...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cl.Close)
	cfg := processor.Config{Brokers: r.brokers, SourcePartitions: sourcePartitions, InternalPartitions: internalPartitions}
	if _, err := r.adm.Ensure(r.ctx, processor.TopicSpecs(cfg)); err != nil {
		t.Fatal(err)
	}
	return r
}

// write sends msgs to the source topics as upstream systems partition
// them (by key, round robin without one) and returns the end offsets.
func (r *rig) write(msgs []synth.Message) map[string]map[int32]int64 {
	r.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(r.brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 10000, BatchBytes: 1e6, BatchTimeout: 2 * time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	if _, err := synth.Write(r.ctx, w, msgs); err != nil {
		r.t.Fatal(err)
	}
	ends, err := r.adm.EndOffsets(r.ctx, synth.Topics()...)
	if err != nil {
		r.t.Fatal(err)
	}
	return ends
}

func (r *rig) waitBuilt() {
	r.t.Helper()
	<-r.built
	if r.buildErr != nil {
		r.t.Fatal(r.buildErr)
	}
}

// start runs `churnwatch run` for the n-th time.
func (r *rig) start(n int) *process {
	r.t.Helper()
	args := []string{"--brokers", strings.Join(r.brokers, ","), "--redis", r.redisURL, "--http", "127.0.0.1:0",
		"--source-partitions", strconv.Itoa(sourcePartitions), "--internal-partitions", strconv.Itoa(internalPartitions),
		"--lateness", lateness.String(), "--log-format", "text", "--log-level", "info"}
	p, err := startProcess(n, r.bin, args, r.log, stateGroup, sourceGroup)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(p.kill)
	return p
}

// crash starts the processor and kills it with SIGKILL, kills times. The
// history to process runs from first to end.
func (r *rig) crash(seed int64, kills int, first, end time.Time) []kill {
	r.t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b696c6c))
	expire := map[int]bool{}
	for _, n := range rng.Perm(kills)[:min(kills, max(0, int(math.Round(*flagExpire*float64(kills)))))] {
		expire[n+1] = true
	}
	maxDelay := max(minDelay, *flagDelay)
	var out []kill
	for n := 1; n <= kills; n++ {
		p := r.start(n)
		k, err := r.moment(p, rng, maxDelay, kills, first, end)
		if err == nil {
			err = p.sleep(k.delay)
		}
		if err != nil {
			r.t.Fatal(err)
		}
		p.kill()
		k.afterStart = time.Since(p.started)
		k.srcCommitted, k.srcEnd = progress(r.ctx, r.adm, sourceGroup, synth.Topics()...)
		k.intCommitted, k.intEnd = progress(r.ctx, r.adm, stateGroup, internalTopic)
		if wm, err := watermarks(r.ctx, r.store, internalPartitions); err == nil {
			k.watermark = slices.MinFunc(wm, time.Time.Compare)
		}
		k.busy = k.srcCommitted < k.srcEnd || k.watermark.Before(end)
		if expire[n] {
			k.evicted = -1
		} else if k.evicted, err = evictMembers(r.ctx, r.cl, stateGroup, sourceGroup); err != nil {
			r.t.Fatal(err)
		}
		r.log.note("kill %d: SIGKILL %s", n, k)
		r.t.Logf("kill %d: %s", n, k)
		out = append(out, k)
	}
	return out
}

// moment waits for the moment of p's run that a kill follows and returns
// the kill with its anchor and delay. The moment is, at random: the start
// (kills during start-up, 15 %); both groups joined (while events are
// re-keyed and received, 15 %); a random share of the source backlog left
// committed (while events are re-keyed, 30 %); the watermark passing a
// random point of the history left to apply (while events are applied
// and timers fire, 30 %); or the watermark moving at all (10 %). Those
// random points lie within twice the backlog's share of one of the kills
// from where the run started, so that the kills spread over the whole
// backlog instead of one run doing most of it. The delay is spread evenly on a log
// scale from 3 ms to maxDelay, or, after the first two moments, half the
// time evenly: the moments of progress are already in the thick of the
// work. When no backlog is left to re-key or apply, the moments of
// progress fall back to the groups joining and the watermark moving.
func (r *rig) moment(p *process, rng *rand.Rand, maxDelay time.Duration, kills int, first, end time.Time) (kill, error) {
	k := kill{delay: time.Duration(float64(minDelay) * math.Pow(float64(maxDelay)/float64(minDelay), rng.Float64()))}
	even := rng.IntN(2) == 0
	deadline := time.Now().Add(time.Minute)
	wm0, err := r.store.Clock(r.ctx)
	if err != nil {
		return k, err
	}
	src0, srcEnd := progress(r.ctx, r.adm, sourceGroup, synth.Topics()...)
	joined := func() error {
		k.anchor = "the groups joined"
		return p.waitJoined(time.Minute)
	}
	moved := func() error {
		k.anchor = "the watermark moved"
		return p.until(deadline, 5*time.Millisecond, k.anchor, nil, func() (bool, error) {
			wm, err := r.store.Clock(r.ctx)
			return err == nil && !wm.Equal(wm0), err
		})
	}
	switch n := rng.IntN(20); {
	case n < 3:
		k.anchor = "start"
	case n < 6:
		err = joined()
	case n < 12:
		if src0 < 0 || src0 >= srcEnd {
			err = joined()
			break
		}
		even = false
		target := src0 + 1 + rng.Int64N(min(srcEnd-src0, max(1, 2*srcEnd/int64(kills+1))))
		k.anchor = fmt.Sprintf("source offset %d was committed", target)
		err = p.until(deadline, 20*time.Millisecond, k.anchor, nil, func() (bool, error) {
			c, _ := progress(r.ctx, r.adm, sourceGroup, synth.Topics()...)
			return c >= target, nil
		})
	case n < 18:
		from := wm0
		if from.IsZero() {
			from = first
		}
		if !from.Before(end) {
			err = moved()
			break
		}
		even = false
		target := from.Add(time.Duration(rng.Int64N(int64(min(end.Sub(from), max(1, 2*end.Sub(first)/time.Duration(kills+1)))))))
		k.anchor = "the watermark passed " + target.Format(time.RFC3339)
		err = p.until(deadline, 5*time.Millisecond, k.anchor, nil, func() (bool, error) {
			wm, err := r.store.Clock(r.ctx)
			return err == nil && !wm.Before(target), err
		})
	default:
		err = moved()
	}
	if errors.Is(err, errStillWaiting) { // slow progress is no failure: kill now
		k.anchor = "a minute passed before " + k.anchor
		err = nil
	}
	if even {
		k.delay = minDelay + time.Duration(rng.Float64()*float64(maxDelay-minDelay))
	}
	return k, err
}

// finish starts the n-th and last run, waits until it has processed
// everything and stops it with SIGTERM.
func (r *rig) finish(srcEnds map[string]map[int32]int64, n int) *process {
	r.t.Helper()
	p := r.start(n)
	limit := *flagTimeout
	if limit == 0 {
		limit = 2*time.Minute + time.Duration(*flagEvents/2000)*time.Second
	}
	if err := p.waitJoined(limit); err != nil {
		r.t.Fatal(err)
	}
	// The last run has caught up once its watermark follows the wall clock
	// from after its start: it read every source partition to the end.
	if err := waitProcessed(r.ctx, p, r.adm, r.store, srcEnds, p.started.Add(-lateness), limit); err != nil {
		r.t.Fatal(err)
	}
	r.log.note("everything processed; SIGTERM")
	if err := p.stop(30 * time.Second); err != nil {
		r.t.Fatalf("last run: %v", err)
	}
	return p
}

// verify compares the final state, the alert topic and the dead-letter
// topic with the offline engine's run of in, each internal partition's
// customers up to that partition's final watermark.
func (r *rig) verify(in input, sum *summary) {
	t, ctx := r.t, r.ctx
	t.Helper()
	wm, err := watermarks(ctx, r.store, internalPartitions)
	if err != nil {
		t.Fatal(err)
	}
	sum.watermarks = wm
	if clock, err := r.store.Clock(ctx); err != nil || clock.UnixMilli() != slices.MinFunc(wm, time.Time.Compare).UnixMilli() {
		t.Fatalf("the watermark records (lowest %s) do not match the published clock %s (%v)", slices.MinFunc(wm, time.Time.Compare), clock, err)
	}
	if err := checkPartitions(ctx, r.store, internalPartitions); err != nil {
		t.Fatal(err)
	}
	x, err := replay(in.events, wm)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.alerts) == 0 {
		t.Fatal("the offline engine raised no alert: the comparison would prove nothing")
	}
	sum.customers = len(x.states)
	sum.byRule = map[string]int{}
	for _, a := range x.alerts {
		sum.byRule[a.Rule+" "+string(a.Status)]++
	}

	diffs, err := compareStates(ctx, r.store, x, bin.SortedKeys(x.states))
	if err != nil {
		t.Fatal(err)
	}
	extra, err := extraCustomers(ctx, r.store, x)
	if err != nil {
		t.Fatal(err)
	}
	diffs = append(diffs, extra...)
	sum.stateDiffs = len(diffs)
	report(t, "customers differ from the offline engine", diffs)
	counters, err := counterDiffs(ctx, r.store, bin.SortedKeys(x.states))
	if err != nil {
		t.Fatal(err)
	}
	report(t, "KPI counters or the spend histogram differ from the states' own (a batch counted twice or lost)", counters)

	alertMsgs, err := r.adm.ReadAll(ctx, r.brokers, alertsTopic)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseAlerts(alertMsgs)
	if err != nil {
		t.Fatal(err)
	}
	missing, extraAlerts := compareAlerts(got, x.alerts)
	sum.alertMsgs, sum.alertIDs, sum.wantAlerts, sum.missing, sum.extra = got.messages, len(got.time), len(x.alerts), len(missing), len(extraAlerts)
	report(t, "alerts of the offline engine missing from the topic", missing)
	report(t, "alerts on the topic that the offline engine did not raise", extraAlerts)

	dlq, err := r.adm.ReadAll(ctx, r.brokers, dlqTopic)
	if err != nil {
		t.Fatal(err)
	}
	dlqMissing, dlqExtra, err := compareDeadLetters(dlq, in.invalid)
	if err != nil {
		t.Fatal(err)
	}
	sum.deadLetters, sum.dlqMissing, sum.dlqExtra = len(dlq), len(dlqMissing), len(dlqExtra)
	report(t, "invalid messages not dead-lettered", dlqMissing)
	report(t, "dead letters of valid or unknown messages", dlqExtra)

	if !t.Failed() {
		sum.selfCheck = checkTheChecks(t, ctx, r.store, x, got, dlq, in.invalid)
	}
}

// counterDiffs compares the KPI counters and spend histogram in Redis with
// what the stored states of ids add up to.
func counterDiffs(ctx context.Context, store *redisstate.Store, ids []string) ([]string, error) {
	states := make([]*state.Customer, 0, len(ids))
	for _, id := range ids {
		c, err := store.Customer(ctx, id)
		if err != nil {
			return nil, err
		}
		if c != nil {
			states = append(states, c)
		}
	}
	return store.CounterDiffs(ctx, redisstate.Recount(states))
}

// checkTheChecks shows that the comparisons can fail: one customer
// corrupted in Redis (its state, and so its counters), one alert taken off and one added, one dead letter
// dropped must each be reported, and nothing else. It returns what it did.
func checkTheChecks(t *testing.T, ctx context.Context, store *redisstate.Store, x *expected, got *topicAlerts, dlq []kafka.Message, invalid map[string]int) string {
	t.Helper()
	failed := t.Failed()
	var victim *state.Customer
	ids := bin.SortedKeys(x.states)
	for i, id := range ids {
		if c, err := store.Customer(ctx, id); err == nil && c != nil && c.Purchases.Count > 0 {
			victim = c
			ids = ids[max(0, i-50):min(len(ids), i+50)] // compared again: the victim and its neighbours
			break
		}
	}
	if victim == nil {
		t.Fatal("no customer with purchases to corrupt")
	}
	victim.Purchases.Total += 1
	if err := store.Partition(partitionOf(victim.ID, internalPartitions)).Write(ctx, &redisstate.Batch{States: []*state.Customer{victim}}); err != nil {
		t.Fatal(err)
	}
	diffs, err := compareStates(ctx, store, x, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || !strings.HasPrefix(diffs[0], "customer "+victim.ID+":") {
		t.Errorf("a customer corrupted in Redis (%s) was not the one difference found: %q", victim.ID, diffs)
	}
	// Its state was written without its counters: the lifetime spend the
	// counters hold no longer adds up.
	counters, err := counterDiffs(ctx, store, bin.SortedKeys(x.states))
	if err != nil {
		t.Fatal(err)
	}
	if len(counters) != 1 || !strings.HasPrefix(counters[0], "counter kpi ltv:") {
		t.Errorf("a state written without its counters: counter differences %q, want the lifetime spend's", counters)
	}

	mutated := &topicAlerts{time: map[string]time.Time{}}
	for id, at := range got.time {
		mutated.time[id] = at
	}
	drop := bin.SortedKeys(mutated.time)[0]
	delete(mutated.time, drop)
	mutated.time["not-raised-firing"] = time.Unix(0, 0)
	if missing, extra := compareAlerts(mutated, x.alerts); len(missing) != 1 || len(extra) != 1 {
		t.Errorf("one alert taken off the topic and one added: %d missing, %d extra found", len(missing), len(extra))
	}

	var dropped string
	var rest []kafka.Message
	for _, m := range dlq {
		if dropped == "" {
			dropped = string(m.Value)
		}
		if string(m.Value) != dropped {
			rest = append(rest, m)
		}
	}
	if missing, extra, err := compareDeadLetters(rest, invalid); err != nil || len(missing) != 1 || len(extra) != 0 {
		t.Errorf("one dead letter dropped: %d missing, %d extra found (%v)", len(missing), len(extra), err)
	}
	if t.Failed() && !failed {
		return "a difference made on purpose went unnoticed"
	}
	return fmt.Sprintf("customer %s corrupted in Redis, alert %s dropped and one added, a dead letter dropped: each found", victim.ID, drop)
}

// report fails the test with up to 20 of the differences found.
func report(t *testing.T, what string, diffs []string) {
	t.Helper()
	if len(diffs) == 0 {
		return
	}
	shown := diffs[:min(len(diffs), 20)]
	t.Errorf("%d %s:\n  %s", len(diffs), what, strings.Join(shown, "\n  "))
}

// backfill returns n messages of a synthetic population's history ending
// at end, with about one invalid message in 500, a few re-sends and late
// tier changes, and a tenth keyed by something else than the customer id;
// and the size of the population drawn.
func backfill(n int, seed int64, end time.Time) ([]synth.Message, int) {
	cfg := synth.Config{Seed: seed, End: end, BadEvery: 500, OtherKeys: 0.1}
	sample := cfg
	sample.Customers = 200
	perCustomer := float64(len(synth.Generate(sample))) / float64(sample.Customers)
	cfg.Customers = int(float64(n)/perCustomer*1.05) + 1
	for {
		msgs := synth.Generate(cfg)
		if len(msgs) >= n {
			return msgs[:n], cfg.Customers
		}
		cfg.Customers += cfg.Customers/10 + 1
	}
}

// progress returns the offsets group committed on topics and their end
// offsets, each summed over partitions; -1 when they cannot be read.
func progress(ctx context.Context, adm *topics.Admin, group string, ts ...string) (committed, end int64) {
	ends, err := adm.EndOffsets(ctx, ts...)
	if err != nil {
		return -1, -1
	}
	for _, ps := range ends {
		for _, e := range ps {
			end += e
		}
	}
	lags, err := adm.Lags(ctx, group)
	if err != nil {
		return -1, end
	}
	for _, l := range lags {
		for _, t := range ts {
			if l.Topic == t && l.Committed > 0 {
				committed += l.Committed
			}
		}
	}
	return committed, end
}

// waitProcessed waits until the process has read, applied and committed
// everything: the source group committed every source offset; then the
// state group every internal offset written by then; then every internal
// partition's watermark is at or after wm (past the last event), with no
// timer due at it.
func waitProcessed(ctx context.Context, p *process, adm *topics.Admin, store *redisstate.Store, srcEnds map[string]map[int32]int64, wm time.Time, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	status := func() string {
		sc, se := progress(ctx, adm, sourceGroup, synth.Topics()...)
		ic, ie := progress(ctx, adm, stateGroup, internalTopic)
		s := fmt.Sprintf("source offsets %d/%d committed, internal %d/%d", sc, se, ic, ie)
		if wm, err := watermarks(ctx, store, internalPartitions); err == nil {
			for i, w := range wm {
				s += fmt.Sprintf(", watermark %d %s", i, w.Format(time.RFC3339))
			}
		}
		return s
	}
	const every = 100 * time.Millisecond
	if err := p.until(deadline, every, "every source offset committed", status, func() (bool, error) {
		return adm.Committed(ctx, sourceGroup, srcEnds)
	}); err != nil {
		return err
	}
	intEnds, err := adm.EndOffsets(ctx, internalTopic)
	if err != nil {
		return err
	}
	if err := p.until(deadline, every, "every internal offset committed", status, func() (bool, error) {
		return adm.Committed(ctx, stateGroup, intEnds)
	}); err != nil {
		return err
	}
	return p.until(deadline, every, "every watermark at "+wm.Format(time.RFC3339)+" or later with no timer due", status, func() (bool, error) {
		ws, err := watermarks(ctx, store, internalPartitions)
		if err != nil {
			return false, err
		}
		for i, w := range ws {
			if w.Before(wm) {
				return false, nil
			}
			due, err := store.Due(ctx, i, w, 1)
			if err != nil || len(due) > 0 {
				return false, err
			}
		}
		return true, nil
	})
}

// summary is what a run prints at its end.
type summary struct {
	seed                               int64
	events, valid, population          int
	end                                time.Time
	customers                          int
	kills                              []kill
	watermarks                         []time.Time
	prepared, built, crashes, finalRun time.Duration
	compare                            time.Duration
	byRule                             map[string]int
	stateDiffs                         int
	alertMsgs, alertIDs, wantAlerts    int
	missing, extra                     int
	deadLetters, invalid               int
	dlqMissing, dlqExtra               int
	selfCheck                          string
}

func (s *summary) String(failed bool, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "crash test summary\n")
	fmt.Fprintf(&b, "  seed        %d\n", s.seed)
	fmt.Fprintf(&b, "  events      %d (%d valid, %d distinct invalid) of %d customers drawn, history up to %s\n",
		s.events, s.valid, s.invalid, s.population, s.end.Format(time.RFC3339))
	busy, evicted := 0, 0
	for _, k := range s.kills {
		if k.busy {
			busy++
		}
		if k.evicted >= 0 {
			evicted++
		}
	}
	fmt.Fprintf(&b, "  kills       %d SIGKILLs (%d while events were left to read or apply), %d restarts (%d after removing the dead members, %d after their session expired)\n",
		len(s.kills), busy, len(s.kills), evicted, len(s.kills)-evicted)
	for i, k := range s.kills {
		fmt.Fprintf(&b, "    kill %2d   %s\n", i+1, k)
	}
	for i, w := range s.watermarks {
		fmt.Fprintf(&b, "  watermark   partition %d: %s\n", i, w.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, "  states      %d customers compared, %d differ\n", s.customers, s.stateDiffs)
	fmt.Fprintf(&b, "  alerts      %d expected ids, %d ids on the topic in %d messages (%d copies of redelivered ids): %d missing, %d extra\n",
		s.wantAlerts, s.alertIDs, s.alertMsgs, s.alertMsgs-s.alertIDs, s.missing, s.extra)
	for _, r := range bin.SortedKeys(s.byRule) {
		fmt.Fprintf(&b, "    %-36s %d\n", r, s.byRule[r])
	}
	fmt.Fprintf(&b, "  dead letters %d messages for %d distinct invalid ones: %d missing, %d extra\n",
		s.deadLetters, s.invalid, s.dlqMissing, s.dlqExtra)
	if s.selfCheck != "" {
		fmt.Fprintf(&b, "  self-check  %s\n", s.selfCheck)
	}
	fmt.Fprintf(&b, "  time        %s in all: events ready after %s, binary after %s, kills and restarts %s (last run %s), comparison %s\n",
		took.Round(time.Millisecond), s.prepared.Round(time.Millisecond), s.built.Round(time.Millisecond),
		s.crashes.Round(time.Millisecond), s.finalRun.Round(time.Millisecond), s.compare.Round(time.Millisecond))
	result := "PASS"
	if failed {
		result = "FAIL"
	}
	fmt.Fprintf(&b, "  result      %s", result)
	return b.String()
}
