package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
)

const day = 24 * time.Hour

var end = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// purchase, usage, profile, ticket and nps build source messages.
func purchase(c string, at time.Time, amount float64) msg {
	return msg{"purchases", []byte(c), evt(nextID("p"), c, at, "amount", amount, "currency", "EUR")}
}
func usage(c string, at time.Time, v float64) msg {
	return msg{"usage", []byte(c), evt(nextID("u"), c, at, "value", v)}
}
func profile(c string, at time.Time, tier string) msg {
	return msg{"customers", []byte(c), evt(nextID("c"), c, at, "tier", tier, "signed_up_at", at.Format(time.RFC3339))}
}
func ticket(c, id, status string, at time.Time) msg {
	return msg{"support-tickets", []byte(c), evt(nextID("t"), c, at, "ticket_id", id, "status", status)}
}
func nps(c string, at time.Time, score int) msg {
	return msg{"feedback", []byte(c), evt(nextID("f"), c, at, "kind", "nps", "score", score)}
}

// oracle runs the same events through the engine offline up to until.
func oracle(t *testing.T, msgs []msg, until time.Time) ([]alerts.Alert, map[string]*state.Customer) {
	t.Helper()
	out, states, err := engine.New(rules.Builtin(), nil).Replay(decodeAll(t, msgs, end.Add(time.Hour)), until)
	if err != nil {
		t.Fatal(err)
	}
	return out, states
}

// backfillHistory is a year in which the usage topic holds far more events
// than the purchase topic: a steady VIP buyer, a VIP who lapsed, and many
// customers who only use the product.
func backfillHistory() (msgs []msg, lastLapsed time.Time) {
	start := end.Add(-365 * day)
	msgs = append(msgs, profile("steady", start, "vip"), profile("lapsed", start, "vip"))
	for at := start.Add(time.Hour); at.Before(end.Add(-5 * day)); at = at.Add(20 * day) {
		msgs = append(msgs, purchase("steady", at, 120))
	}
	for at := start.Add(time.Hour); at.Before(end.Add(-250 * day)); at = at.Add(20 * day) {
		msgs = append(msgs, purchase("lapsed", at, 80))
		lastLapsed = at
	}
	for i := range 30 {
		c := "user-" + strconv.Itoa(i)
		for at := start.Add(time.Duration(i) * time.Minute); at.Before(end); at = at.Add(12 * time.Hour) {
			msgs = append(msgs, usage(c, at, 2))
		}
	}
	for at := start; at.Before(end); at = at.Add(8 * time.Hour) {
		msgs = append(msgs, usage("steady", at, 1), usage("lapsed", at, 1))
	}
	sortByTime(msgs)
	return msgs, lastLapsed
}

func firing(as map[string]alerts.CloudEvent, customer, rule string) []alerts.CloudEvent {
	var out []alerts.CloudEvent
	for _, ce := range as {
		if ce.Data.CustomerID == customer && ce.Data.Rule == rule && ce.Data.Status == alerts.Firing {
			out = append(out, ce)
		}
	}
	return out
}

func TestBackfillReadAheadNoFalseAbsence(t *testing.T) {
	e := newEnv(t, end)
	msgs, lastLapsed := backfillHistory()
	e.produce(msgs...)
	e.start()
	e.waitWatermark(end.Add(-5*time.Minute), 2*time.Minute)

	got := parseAlerts(t, e.alertsOnTopic())
	if f := firing(got, "steady", "vip-no-purchase-180d"); len(f) != 0 {
		t.Errorf("steady buyer got a false absence alert at %s", f[0].Time)
	}
	f := firing(got, "lapsed", "vip-no-purchase-180d")
	if len(f) != 1 {
		t.Fatalf("lapsed VIP: %d vip-no-purchase-180d alerts, want 1", len(f))
	}
	want := lastLapsed.Add(180 * day)
	if !f[0].Data.Time.Equal(want) {
		t.Errorf("lapsed VIP alert time %s, want last purchase + 180 days = %s", f[0].Data.Time, want)
	}
	if id := alerts.ID("vip-no-purchase-180d", "lapsed", want); f[0].Data.AlertID != id {
		t.Errorf("alert_id %s, want %s", f[0].Data.AlertID, id)
	}
	oa, _ := oracle(t, msgs, end.Add(-5*time.Minute))
	if g, w := keysOf(got), keysOfAlerts(oa); !reflect.DeepEqual(g, w) {
		t.Errorf("topic alerts differ from the offline engine:\n got %v\nwant %v", g, w)
	}
}

// liveHistory is a few months of varied customers.
func liveHistory() []msg {
	start := end.Add(-200 * day)
	var msgs []msg
	for i := range 8 {
		c := "c" + strconv.Itoa(i)
		base := start.Add(time.Duration(i) * 7 * time.Hour)
		tier := "regular"
		if i%2 == 0 {
			tier = "vip"
		}
		msgs = append(msgs, profile(c, base, tier))
		for k := range 6 - i%4 {
			msgs = append(msgs, purchase(c, base.Add(time.Duration(k)*9*day+time.Hour), float64(10+i*k)))
		}
		for k := range 3 + i%3 {
			msgs = append(msgs, ticket(c, fmt.Sprintf("tk-%d-%d", i, k), "opened", base.Add(time.Duration(40+k*3+i)*day)))
		}
		for d := 0; d < 120-i*10; d++ {
			msgs = append(msgs, usage(c, base.Add(time.Duration(d)*day+3*time.Hour), float64(3+i%3)))
		}
		msgs = append(msgs, nps(c, base.Add(time.Duration(60+i)*day), i+2))
	}
	sortByTime(msgs)
	return msgs
}

// sortByTime orders messages by occurred_at, as upstream topics roughly are.
func sortByTime(msgs []msg) {
	at := make(map[string]time.Time, len(msgs))
	for _, m := range msgs {
		e, err := event.Decode([]byte(m.value), DefaultSources()[m.topic], end.Add(time.Hour))
		if err != nil {
			panic(err)
		}
		at[m.value] = e.OccurredAt
	}
	sort.SliceStable(msgs, func(i, j int) bool { return at[msgs[i].value].Before(at[msgs[j].value]) })
}

func TestReplayEqualsLive(t *testing.T) {
	msgs := liveHistory()
	final := end.Add(-5 * time.Minute)

	// Live: the wall clock follows the events; each is sent when it happens.
	live := newEnv(t, end.Add(-200*day))
	live.start()
	for i, m := range msgs {
		ev, _ := event.Decode([]byte(m.value), DefaultSources()[m.topic], end.Add(time.Hour))
		live.clock.set(ev.OccurredAt)
		live.produce(m)
		if i%100 == 99 {
			live.waitWatermark(ev.OccurredAt.Add(-5*time.Minute), time.Minute)
		}
	}
	live.clock.set(end)
	live.waitWatermark(final, time.Minute)
	liveAlerts := parseAlerts(t, live.alertsOnTopic())

	// Backfill: everything is already on the topics when processing starts.
	back := newEnv(t, end)
	back.produce(msgs...)
	back.start()
	back.waitWatermark(final, time.Minute)
	backAlerts := parseAlerts(t, back.alertsOnTopic())

	if len(liveAlerts) == 0 {
		t.Fatal("no alerts at all: the history should fire several")
	}
	if g, w := keysOf(liveAlerts), keysOf(backAlerts); !reflect.DeepEqual(g, w) {
		t.Errorf("live and backfill differ:\n live %v\n back %v", g, w)
	}
	oa, _ := oracle(t, msgs, final)
	if g, w := keysOf(backAlerts), keysOfAlerts(oa); !reflect.DeepEqual(g, w) {
		t.Errorf("backfill differs from the offline engine:\n got %v\nwant %v", g, w)
	}
}

func TestCrashMidBatchRestart(t *testing.T) {
	for _, point := range []string{"after-produce", "after-write"} {
		t.Run(point, func(t *testing.T) {
			msgs, _ := backfillHistory()
			msgs = append(msgs, liveHistory()...)
			sortByTime(msgs)
			final := end.Add(-5 * time.Minute)
			e := newEnv(t, end)
			e.produce(msgs...)

			var steps atomic.Int64
			crashed := make(chan struct{})
			testCrash = func(p string) bool {
				if p == point && steps.Add(1) == 3 {
					close(crashed)
					return true
				}
				return false
			}
			t.Cleanup(func() { testCrash = nil })
			r := e.start()
			select {
			case <-crashed:
			case <-time.After(time.Minute):
				t.Fatal("no batch reached the crash point")
			}
			r.stop(t)
			testCrash = nil

			e.start()
			e.waitWatermark(final, 2*time.Minute)
			e.matchesOracle(t, msgs, final, "after the crash")
		})
	}
}

// TestCatchUpEqualsOracle: in catch-up mode (big batches, timers fired
// only once the watermark is a week past them) alerts and states are
// exactly those of the offline engine, and no timer is left unfired.
func TestCatchUpEqualsOracle(t *testing.T) {
	// The first 20 batches of every partition catch up, the rest run as
	// live traffic would (when the watermark-held timers fire).
	saved := catchUp
	var mu sync.Mutex
	batches := map[int]int{}
	catchUp.batch, catchUp.wait = 300, 100*time.Millisecond
	catchUp.on = func(p int, _ int64) bool {
		mu.Lock()
		defer mu.Unlock()
		batches[p]++
		return batches[p] <= 20
	}
	t.Cleanup(func() { catchUp = saved })
	msgs, _ := backfillHistory()
	msgs = append(msgs, liveHistory()...)
	sortByTime(msgs)
	final := end.Add(-5 * time.Minute)
	e := newEnvWith(t, end, func(c *Config) { c.BatchSize = 50 })
	e.produce(msgs...)
	e.start()
	e.waitWatermark(final, 2*time.Minute)
	e.matchesOracle(t, msgs, final, "in catch-up mode")
	for p := range e.cfg.InternalPartitions {
		if due, err := e.store.Due(context.Background(), p, final, 10); err != nil || len(due) > 0 {
			t.Errorf("partition %d: timers due by the final watermark left unfired: %v %v", p, due, err)
		}
	}
}

// compareStates checks that every customer's state in Redis equals the
// offline engine's, once both stand at the same event time.
func compareStates(t *testing.T, e *env, want map[string]*state.Customer, at time.Time) {
	t.Helper()
	eng := engine.New(rules.Builtin(), nil)
	for id, w := range want {
		g, err := e.store.Customer(context.Background(), id)
		if err != nil || g == nil {
			t.Fatalf("customer %s: %v (state missing)", id, err)
		}
		if err := eng.Advance(g, at, func(a alerts.Alert) {
			t.Errorf("customer %s: a due timer was left unfired: %s %s at %s", id, a.Rule, a.Status, a.Time)
		}); err != nil {
			t.Fatal(err)
		}
		if gv, wv := normalize(g), normalize(w); gv != wv {
			t.Errorf("customer %s state differs:\n got %+v\nwant %+v", id, gv, wv)
		}
	}
}

// normalize keeps what a state means, not how it got there (offsets and
// the cross-customer segment differ by construction).
func normalize(c *state.Customer) string {
	v := c.View()
	v.Customer.Segment = ""
	active := c.Active
	if len(active) == 0 {
		active = nil
	}
	reasons, err := engine.New(rules.Builtin(), nil).Explain(c)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(struct {
		View    any
		Active  []state.Active
		Risk    int
		Reasons []string
		Pending int
		Seen    int
	}{*v, active, c.Risk, reasons, len(c.Pending), len(c.Seen)})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestWindowSlideResolvesWithoutEvent(t *testing.T) {
	t0 := end.Add(-60 * day)
	msgs := []msg{
		ticket("slide", "a", "opened", t0),
		ticket("slide", "b", "opened", t0.Add(day)),
		ticket("slide", "c", "opened", t0.Add(2*day)),
	}
	e := newEnv(t, end)
	e.produce(msgs...)
	r := e.start()
	e.waitWatermark(end.Add(-5*time.Minute), time.Minute)
	got := parseAlerts(t, e.alertsOnTopic())
	var fired, resolved *alerts.CloudEvent
	for _, ce := range got {
		if ce.Data.Rule != "ticket-surge" {
			continue
		}
		if ce.Data.Status == alerts.Firing {
			fired = &ce
		} else {
			resolved = &ce
		}
	}
	if fired == nil || !fired.Data.Time.Equal(t0.Add(2*day)) {
		t.Fatalf("ticket-surge firing %+v, want at the third ticket %s", fired, t0.Add(2*day))
	}
	if resolved == nil || !resolved.Data.Time.Equal(t0.Add(30*day)) {
		t.Fatalf("ticket-surge resolved %+v, want 30 days after the first ticket, %s", resolved, t0.Add(30*day))
	}
	if n := testutil.ToFloat64(r.p.Metrics().Alerts.WithLabelValues("ticket-surge", "resolved")); n != 1 {
		t.Errorf("alerts metric for resolved ticket-surge: %g, want 1", n)
	}
	if resolved.Data.AlertID != fired.Data.AlertID || resolved.ID != fired.Data.AlertID+"-resolved" {
		t.Errorf("episode ids: firing %s, resolved %s", fired.ID, resolved.ID)
	}
}

func TestBadInputDuplicatesKeysAndLatest(t *testing.T) {
	t0 := end.Add(-10 * day)
	dup := evt("dup-1", "k1", t0, "amount", 10)
	msgs := []msg{
		{"purchases", []byte("k1"), dup},
		{"purchases", []byte("k1"), dup}, // re-sent by upstream
		{"purchases", nil, evt("nk-1", "k1", t0.Add(time.Hour), "amount", 5)},
		{"purchases", []byte(""), evt("ek-1", "k1", t0.Add(2*time.Hour), "amount", 5)},
		{"purchases", []byte("order-77"), evt("ok-1", "k1", t0.Add(3*time.Hour), "amount", 5)},
		// Profile updates arrive newest first; latest by occurred_at wins.
		{"customers", []byte("k1"), evt("pr-2", "k1", t0.Add(5*time.Hour), "tier", "vip")},
		{"customers", []byte("k1"), evt("pr-1", "k1", t0.Add(4*time.Hour), "tier", "regular")},
		{"feedback", []byte("k1"), evt("fb-2", "k1", t0.Add(7*time.Hour), "kind", "nps", "score", 10)},
		{"feedback", []byte("k1"), evt("fb-1", "k1", t0.Add(6*time.Hour), "kind", "nps", "score", 1)},
		// A customer id full of characters that Redis keys and hash tags care about.
		{"purchases", []byte("x"), evt("sp-1", "a {b}: c", t0, "amount", 1)},
	}
	bad := []msg{
		{"purchases", []byte("bad-1"), `not json`},
		{"purchases", nil, evt("b2", "k1", t0)},                                     // amount missing
		{"usage", []byte("bad-3"), evt("b3", "k1", end.Add(48*time.Hour))},          // far future
		{"support-tickets", []byte("bad-4"), evt("b4", "k1", t0, "ticket_id", "t")}, // status missing
	}
	e := newEnv(t, end)
	e.produce(append(msgs, bad...)...)
	r := e.start()
	e.waitWatermark(end.Add(-5*time.Minute), time.Minute)

	mt := r.p.Metrics()
	for _, want := range []struct {
		c    prometheus.Collector
		n    float64
		what string
	}{
		{mt.EventsIn.WithLabelValues("purchases", "purchase"), 6, "valid purchases read (the re-sent one included)"},
		{mt.EventsIn.WithLabelValues("customers", "customer"), 2, "profile updates read"},
		{mt.DeadLetters.WithLabelValues("purchases", "invalid_json"), 1, "invalid JSON dead letters"},
		{mt.DeadLetters.WithLabelValues("purchases", "missing_field"), 1, "purchases without amount"},
		{mt.DeadLetters.WithLabelValues("support-tickets", "missing_field"), 1, "tickets without status"},
		{mt.DeadLetters.WithLabelValues("usage", "future"), 1, "far-future usage"},
	} {
		if got := testutil.ToFloat64(want.c); got != want.n {
			t.Errorf("%s: metric %g, want %g", want.what, got, want.n)
		}
	}
	if testutil.CollectAndCount(mt.BatchSeconds) != 2 {
		t.Error("batch durations of both stages not recorded")
	}

	c, err := e.store.Customer(context.Background(), "k1")
	if err != nil || c == nil {
		t.Fatalf("customer k1: %v", err)
	}
	if c.Purchases.Count != 4 || c.Purchases.Total != 25 {
		t.Errorf("purchases count/total = %d/%g, want 4/25 (duplicate applied once, any key)", c.Purchases.Count, c.Purchases.Total)
	}
	if c.Profile.Tier != "vip" || c.Feedback.NPS != 10 {
		t.Errorf("tier %q nps %d, want the latest by occurred_at: vip 10", c.Profile.Tier, c.Feedback.NPS)
	}
	if c.LastSeen[event.Usage] != (time.Time{}) {
		t.Error("the far-future usage event was applied")
	}
	if sp, _ := e.store.Customer(context.Background(), "a {b}: c"); sp == nil || sp.Purchases.Count != 1 {
		t.Errorf("customer with braces in its id: %+v", sp)
	}
	dlq := e.readAll("churn-dlq")
	if len(dlq) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(bad))
	}
	for _, m := range dlq {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		found := false
		for _, b := range bad {
			if b.value == string(m.Value) && string(b.key) == string(m.Key) && h[HeaderTopic] == b.topic {
				found = true
			}
		}
		if !found || h[HeaderError] == "" || h[HeaderPartition] == "" || h[HeaderOffset] == "" {
			t.Errorf("dead letter %q key %q headers %v: not an original message with the four headers", m.Value, m.Key, h)
		}
	}
	// Nothing was lost: the far-future message did not drag the clock.
	b, _ := e.store.Watermark(context.Background(), 0)
	m, _ := decodeMarks(b)
	if m.W.After(end) {
		t.Errorf("watermark %s is ahead of the wall clock %s", m.W, end)
	}
}

func TestReadiness(t *testing.T) {
	e := newEnv(t, end)
	r := e.start()
	ready := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return r.p.Ready(ctx)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %v", ready())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.cluster.Close() // the broker goes away
	if err := ready(); err == nil {
		t.Fatal("ready while the broker is down")
	}
}

// TestHoldoutMarked: alerts of customers in the holdout share carry
// data.holdout: true on the topic; the others false.
func TestHoldoutMarked(t *testing.T) {
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		id := "h" + strconv.Itoa(i)
		if alerts.InHoldout(id, 0.5) {
			in = id
		} else {
			out = id
		}
	}
	t0 := end.Add(-10 * day)
	var msgs []msg
	for _, c := range []string{in, out} {
		for i, s := range []string{"a", "b", "c"} {
			msgs = append(msgs, ticket(c, s, "opened", t0.Add(time.Duration(i)*time.Hour)))
		}
	}
	e := newEnvWith(t, end, func(c *Config) { c.Holdout = 0.5 })
	e.produce(msgs...)
	e.start()
	e.waitWatermark(end.Add(-5*time.Minute), time.Minute)
	seen := map[string]bool{}
	for _, ce := range parseAlerts(t, e.alertsOnTopic()) {
		if ce.Data.Holdout != (ce.Data.CustomerID == in) {
			t.Errorf("%s of %s: holdout %v", ce.ID, ce.Data.CustomerID, ce.Data.Holdout)
		}
		seen[ce.Data.CustomerID] = true
	}
	if !seen[in] || !seen[out] {
		t.Fatalf("alerts for %v, want both %s and %s", seen, in, out)
	}
}
