package delivery

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/webhook"
)

// clock is a settable wall clock shared by a test and its dispatchers.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock        { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func secret(t testing.TB, b byte) webhook.Secret {
	s, err := webhook.ParseSecret("whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// receiver is a webhook endpoint: a verifying sink behind a switch that can
// make it fail.
type receiver struct {
	*httptest.Server
	sink     *webhook.Sink
	mu       sync.Mutex
	answer   func(r *http.Request) int // nil: the sink answers
	attempts []string                  // webhook-id of every request, in order
	stamps   []string                  // webhook-timestamp of every request
}

func newReceiver(t testing.TB, clk *clock, secrets ...webhook.Secret) *receiver {
	// The tests move the clock by hours while attempts are in flight, so the
	// receiver's timestamp tolerance is wider than the jumps.
	rc := &receiver{sink: &webhook.Sink{Secrets: secrets, Now: clk.now, Tolerance: 30 * 24 * time.Hour}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.attempts = append(rc.attempts, r.Header.Get(webhook.HeaderID))
		rc.stamps = append(rc.stamps, r.Header.Get(webhook.HeaderTimestamp))
		answer := rc.answer
		rc.mu.Unlock()
		if answer != nil {
			if code := answer(r); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		rc.sink.ServeHTTP(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) set(answer func(r *http.Request) int) {
	rc.mu.Lock()
	rc.answer = answer
	rc.mu.Unlock()
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.attempts)
}

// env is one test's broker (kfake over TCP), Redis, clock and alert writer.
type env struct {
	t       testing.TB
	brokers []string
	store   *Store
	clock   *clock
	writer  *kafka.Writer
	logs    *syncbuf.Buffer
	metrics *metrics.Set
	wm      atomic.Pointer[time.Time]
}

func newEnv(t testing.TB) *env {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, "churn-alerts"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	rdb, _ := redistest.Start(t)
	e := &env{t: t, brokers: cluster.ListenAddrs(), store: NewStore(rdb, ""), logs: &syncbuf.Buffer{},
		clock: newClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)), metrics: metrics.New()}
	e.writer = &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: "churn-alerts", Balancer: &kafka.Hash{},
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	t.Cleanup(func() {
		e.writer.Close()
		if t.Failed() {
			t.Logf("dispatcher log:\n%s", e.logs.String())
		}
	})
	return e
}

// dispatcher starts a dispatcher; stop ends it and waits.
func (e *env) dispatcher(cfg *webhook.Config, edit func(*Config)) (stop func()) {
	e.t.Helper()
	c := Config{Brokers: e.brokers, Webhooks: cfg, Now: e.clock.now, Poll: 10 * time.Millisecond, Hold: time.Minute,
		Seed: 7, Metrics: e.metrics, Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Absence: func(rule string) bool { return rule == "vip-no-purchase-180d" },
		Watermark: func(context.Context) (time.Time, error) {
			if p := e.wm.Load(); p != nil {
				return *p, nil
			}
			return time.Time{}, nil
		}}
	if edit != nil {
		edit(&c)
	}
	d, err := New(c, e.store.rdb)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("dispatcher: %v", err)
		}
	}
}

// alert builds an alert event; each (rule, customer, start) is one episode.
func alert(rule, customer string, status alerts.Status, start time.Time) alerts.Alert {
	return alerts.Alert{AlertID: alerts.ID(rule, customer, start), Rule: rule, Severity: "high", CustomerID: customer,
		Status: status, Time: start, RiskScore: 60, Reasons: []string{"test"}}
}

func (e *env) publish(as ...alerts.Alert) {
	e.t.Helper()
	msgs := make([]kafka.Message, len(as))
	for i := range as {
		b, err := as[i].MarshalCloudEvent()
		if err != nil {
			e.t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(as[i].CustomerID), Value: b}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.writer.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits long enough for a running dispatcher to have acted on
// anything due, so that a test can assert that nothing happened.
func settle() { time.Sleep(150 * time.Millisecond) }

func endpointTo(rc *receiver, name string, secrets ...webhook.Secret) *webhook.Endpoint {
	return &webhook.Endpoint{Name: name, URL: rc.URL, Secrets: secrets, Timeout: 2 * time.Second}
}

func config(eps ...*webhook.Endpoint) *webhook.Config {
	return &webhook.Config{Endpoints: eps, Caps: webhook.DefaultCaps, StallAfter: time.Hour}
}

func (e *env) pending(ep string) (pending, dead int64) {
	p, d, err := e.store.Counts(context.Background(), ep)
	if err != nil {
		e.t.Fatal(err)
	}
	return p, d
}

// attempts returns the recorded attempts of a pending delivery.
func (e *env) attempts(ep, eventID string) int {
	n, _ := e.store.rdb.HGet(context.Background(), e.store.jobKey(ep, eventID), "attempt").Int()
	return n
}

// retried waits until the delivery's nth attempt is recorded and returns
// how long until the next one is due.
func (e *env) retried(ep, eventID string, n int) time.Duration {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("attempt %d to be recorded", n), func() bool { return e.attempts(ep, eventID) == n })
	return e.due(ep, eventID).Sub(e.clock.now())
}

func (e *env) due(ep, eventID string) time.Time {
	ms, err := e.store.rdb.ZScore(context.Background(), e.store.dueKey(ep), eventID).Result()
	if err != nil {
		e.t.Fatalf("due time of %s: %v", eventID, err)
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// TestRetryScheduleSurvivesRestarts walks one delivery through failures
// with the dispatcher stopped and started again between attempts: the
// schedule lives in Redis, every attempt carries the same webhook-id and a
// fresh timestamp, nothing is sent before it is due, and after the 2xx
// nothing is sent again.
func TestRetryScheduleSurvivesRestarts(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 1)
	rc := newReceiver(t, e.clock, key)
	var fails atomic.Int32
	fails.Store(3)
	rc.set(func(*http.Request) int {
		if fails.Add(-1) >= 0 {
			return 500
		}
		return 0
	})
	cfg := config(endpointTo(rc, "crm", key))
	a := alert("ticket-surge", "c1", alerts.Firing, e.clock.now().Add(-time.Hour))
	e.publish(a)

	stop := e.dispatcher(cfg, nil)
	if d := e.retried("crm", a.EventID(), 1); d < 4*time.Second || d > 6*time.Second {
		t.Errorf("second attempt due in %s, want 5s ± 10%%", d)
	}
	settle()
	if rc.count() != 1 {
		t.Fatalf("%d attempts before the retry was due", rc.count())
	}
	stop()

	// Restarted after the due time: the retry happens.
	e.clock.advance(6 * time.Second)
	stop = e.dispatcher(cfg, nil)
	if d := e.retried("crm", a.EventID(), 2); d < 4*time.Minute || d > 6*time.Minute {
		t.Errorf("third attempt due in %s, want 5m ± 10%%", d)
	}
	e.clock.advance(6 * time.Minute)
	if d := e.retried("crm", a.EventID(), 3); d < 27*time.Minute || d > 33*time.Minute {
		t.Errorf("fourth attempt due in %s, want 30m ± 10%%", d)
	}
	stop()

	e.clock.advance(34 * time.Minute)
	stop = e.dispatcher(cfg, nil)
	defer stop()
	waitFor(t, "the delivery", func() bool { return rc.sink.Seen()[a.EventID()] == 1 })
	waitFor(t, "the job to be removed", func() bool { p, _ := e.pending("crm"); return p == 0 })
	e.clock.advance(48 * time.Hour)
	settle()
	if rc.count() != 4 {
		t.Errorf("%d requests, want 4 (three failures and one success)", rc.count())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, id := range rc.attempts {
		if id != a.EventID() {
			t.Errorf("attempt %d: webhook-id %q, want %q", i, id, a.EventID())
		}
		if i > 0 && rc.stamps[i] == rc.stamps[i-1] {
			t.Errorf("attempts %d and %d share the timestamp %s", i-1, i, rc.stamps[i])
		}
	}
}

// TestOutcomes covers the answers of an endpoint: Retry-After on 429, 410
// disabling the endpoint until it is enabled, 400 going straight to the dead
// letters (replayable), a timeout retried, and a schedule that ends in the
// dead letters after about 28 hours.
func TestOutcomes(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 2)
	ctx := context.Background()
	start := e.clock.now().Add(-time.Hour)

	t.Run("429 Retry-After", func(t *testing.T) {
		rc := newReceiver(t, e.clock, key)
		rc.set(func(*http.Request) int { return 0 })
		rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc.mu.Lock()
			rc.attempts = append(rc.attempts, r.Header.Get(webhook.HeaderID))
			rc.mu.Unlock()
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(429)
		})
		a := alert("ticket-surge", "r429", alerts.Firing, start)
		e.publish(a)
		stop := e.dispatcher(config(endpointTo(rc, "rl", key)), func(c *Config) { c.Group = "g429" })
		defer stop()
		if d := e.retried("rl", a.EventID(), 1); d < time.Hour || d > time.Hour+time.Second {
			t.Errorf("retry in %s, want the hour the endpoint asked for", d)
		}
	})

	t.Run("410 disables, enable resumes", func(t *testing.T) {
		rc := newReceiver(t, e.clock, key)
		gone := atomic.Bool{}
		gone.Store(true)
		rc.set(func(*http.Request) int {
			if gone.Load() {
				return 410
			}
			return 0
		})
		a, b := alert("ticket-surge", "g1", alerts.Firing, start), alert("ticket-surge", "g2", alerts.Firing, start)
		e.publish(a, b)
		stop := e.dispatcher(config(endpointTo(rc, "gone", key)), func(c *Config) { c.Group = "g410" })
		defer stop()
		waitFor(t, "the endpoint to be disabled", func() bool {
			off, _ := e.store.Disabled(ctx)
			return off["gone"] != ""
		})
		settle()
		n := rc.count() // attempts already in flight also get their 410
		settle()
		if rc.count() != n || n > 2 {
			t.Errorf("%d requests after a 410, then %d: want no new attempt", n, rc.count())
		}
		if p, d := e.pending("gone"); p != 2 || d != 0 {
			t.Errorf("pending %d, dead %d: want both deliveries waiting", p, d)
		}
		gone.Store(false)
		if ok, err := e.store.Enable(ctx, "gone"); !ok || err != nil {
			t.Fatalf("enable: %v %v", ok, err)
		}
		waitFor(t, "both deliveries", func() bool { s := rc.sink.Seen(); return s[a.EventID()] == 1 && s[b.EventID()] == 1 })
	})

	t.Run("400 dead-letters, replay delivers", func(t *testing.T) {
		rc := newReceiver(t, e.clock, key)
		bad := atomic.Bool{}
		bad.Store(true)
		rc.set(func(*http.Request) int {
			if bad.Load() {
				return 400
			}
			return 0
		})
		a := alert("ticket-surge", "b1", alerts.Firing, start)
		e.publish(a)
		stop := e.dispatcher(config(endpointTo(rc, "strict", key)), func(c *Config) { c.Group = "g400" })
		defer stop()
		waitFor(t, "the dead letter", func() bool { _, d := e.pending("strict"); return d == 1 })
		if rc.count() != 1 {
			t.Errorf("%d attempts, want 1: a 400 is not retried", rc.count())
		}
		dl, err := e.store.DeadLetters(ctx, "strict", 10)
		if err != nil || len(dl) != 1 || dl[0].EventID != a.EventID() || dl[0].LastStatus != 400 || !strings.Contains(dl[0].DeadReason, "400") {
			t.Fatalf("dead letters %+v, %v", dl, err)
		}
		bad.Store(false)
		if n, err := e.store.Replay(ctx, "strict", nil, e.clock.now()); n != 1 || err != nil {
			t.Fatalf("replay: %d, %v", n, err)
		}
		waitFor(t, "the replayed delivery", func() bool { return rc.sink.Seen()[a.EventID()] == 1 })
		waitFor(t, "the delivery to be done", func() bool { p, d := e.pending("strict"); return p == 0 && d == 0 })
	})

	t.Run("timeouts until the schedule ends", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		rc := newReceiver(t, e.clock, key)
		rc.set(func(r *http.Request) int {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return 500
		})
		a := alert("ticket-surge", "t1", alerts.Firing, start)
		e.publish(a)
		ep := endpointTo(rc, "slow", key)
		ep.Timeout = 50 * time.Millisecond
		stop := e.dispatcher(config(ep), func(c *Config) { c.Group = "gslow" })
		defer stop()
		var total time.Duration
		for i := 1; i < webhook.Attempts; i++ {
			d := e.retried("slow", a.EventID(), i)
			total += d
			e.clock.advance(d)
		}
		if total < 24*time.Hour || total > 32*time.Hour {
			t.Errorf("the schedule spans %s, want about 28 hours", total)
		}
		waitFor(t, "the dead letter", func() bool { _, d := e.pending("slow"); return d == 1 })
		dl, _ := e.store.DeadLetters(ctx, "slow", 1)
		if len(dl) != 1 || dl[0].Attempt != webhook.Attempts || !strings.Contains(dl[0].LastError, "did not answer") {
			t.Fatalf("dead letter %+v", dl)
		}
	})
}

// TestContactCaps: one firing notification per rule per customer and two
// per customer within 7 days; what the caps suppress is recorded, and the
// resolved event of a suppressed firing is not sent either.
func TestContactCaps(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 3)
	rc := newReceiver(t, e.clock, key)
	ctx := context.Background()
	stop := e.dispatcher(config(endpointTo(rc, "crm", key)), nil)
	defer stop()
	t0 := e.clock.now().Add(-48 * time.Hour)

	first := alert("ticket-surge", "c1", alerts.Firing, t0)
	again := alert("ticket-surge", "c1", alerts.Firing, t0.Add(time.Hour)) // a second episode of the same rule
	other := alert("nps-detractor", "c1", alerts.Firing, t0)
	third := alert("usage-drop", "c1", alerts.Firing, t0)
	elsewhere := alert("ticket-surge", "c2", alerts.Firing, t0)
	e.publish(first)
	waitFor(t, "the first notification", func() bool { return rc.sink.Seen()[first.EventID()] == 1 })
	e.publish(again, other, third, elsewhere)
	waitFor(t, "the other rule and customer", func() bool {
		s := rc.sink.Seen()
		return s[other.EventID()] == 1 && s[elsewhere.EventID()] == 1
	})
	var supp []Suppression
	waitFor(t, "two suppressions", func() bool { supp, _ = e.store.Suppressed(ctx, 10); return len(supp) == 2 })
	reasons := map[string]string{}
	for _, s := range supp {
		reasons[s.EventID] = s.Reason
		if s.CustomerID != "c1" || s.At == "" || s.Detail == "" {
			t.Errorf("suppression record %+v", s)
		}
	}
	if reasons[again.EventID()] != "cap-rule" || reasons[third.EventID()] != "cap-customer" {
		t.Errorf("suppressed %v, want the second ticket-surge by the rule cap and usage-drop by the customer cap", reasons)
	}

	// The resolved event of a notified firing is sent; that of a suppressed one is not.
	r1, r2 := first, again
	r1.Status, r2.Status = alerts.Resolved, alerts.Resolved
	e.publish(r1, r2)
	waitFor(t, "the resolved notification", func() bool { return rc.sink.Seen()[r1.EventID()] == 1 })
	waitFor(t, "the resolved suppression", func() bool { supp, _ = e.store.Suppressed(ctx, 10); return len(supp) == 3 })
	if supp[0].EventID != r2.EventID() || supp[0].Reason != "firing-not-notified" {
		t.Errorf("newest suppression %+v, want %s as firing-not-notified", supp[0], r2.EventID())
	}

	// Seven days later the customer may be contacted again for the rule.
	e.clock.advance(7*24*time.Hour + time.Minute)
	later := alert("ticket-surge", "c1", alerts.Firing, t0.Add(8*24*time.Hour))
	e.publish(later)
	waitFor(t, "the notification after the window", func() bool { return rc.sink.Seen()[later.EventID()] == 1 })
	settle()
	for id, n := range rc.sink.Seen() {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
	if len(rc.sink.Seen()) != 5 {
		t.Errorf("%d notifications, want 5: %v", len(rc.sink.Seen()), rc.sink.Seen())
	}
	if got := testutil.ToFloat64(e.metrics.WebhookSuppressed.WithLabelValues("cap-rule")); got != 1 {
		t.Errorf("cap-rule suppressions metric %v, want 1", got)
	}
}

// TestSilencesAndHoldout: a silence of a customer, of a rule, or expired;
// a silence set while a delivery waits for its retry; a held-out customer.
func TestSilencesAndHoldout(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 4)
	rc := newReceiver(t, e.clock, key)
	ctx := context.Background()
	now := e.clock.now()
	add := func(s webhook.Silence) webhook.Silence {
		t.Helper()
		s, err := e.store.AddSilence(ctx, s, e.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := e.store.AddSilence(ctx, webhook.Silence{Until: now.Add(time.Hour), Comment: "x"}, now); err == nil {
		t.Error("a silence of everything was accepted")
	}
	add(webhook.Silence{CustomerID: "quiet", Until: now.Add(24 * time.Hour), Comment: "do not contact: legal hold"})
	add(webhook.Silence{Rule: "nps-detractor", Until: now.Add(24 * time.Hour), Comment: "survey under review"})
	expired := add(webhook.Silence{CustomerID: "back", Until: now.Add(24 * time.Hour), Comment: "save play running"})
	if _, err := e.store.ExpireSilence(ctx, expired.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ExpireSilence(ctx, "nope", now); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("expire an unknown silence: %v", err)
	}
	var failing atomic.Bool
	failing.Store(true)
	lateID := alerts.ID("ticket-surge", "late", now) + "-firing"
	rc.set(func(r *http.Request) int {
		if failing.Load() && r.Header.Get(webhook.HeaderID) == lateID {
			return 503
		}
		return 0
	})
	stop := e.dispatcher(config(endpointTo(rc, "crm", key)), nil)
	defer stop()

	quiet := alert("ticket-surge", "quiet", alerts.Firing, now)
	nps := alert("nps-detractor", "c9", alerts.Firing, now)
	back := alert("ticket-surge", "back", alerts.Firing, now)
	held := alert("ticket-surge", "held", alerts.Firing, now)
	held.Holdout = true
	late := alert("ticket-surge", "late", alerts.Firing, now)
	e.publish(quiet, nps, back, held, late)
	waitFor(t, "the unsilenced notification", func() bool { return rc.sink.Seen()[back.EventID()] == 1 })
	e.retried("crm", late.EventID(), 1)
	add(webhook.Silence{CustomerID: "late", Rule: "ticket-surge", Until: now.Add(time.Hour), Comment: "account manager already called"})
	failing.Store(false)
	e.clock.advance(10 * time.Second)
	waitFor(t, "the waiting delivery to be suppressed", func() bool { p, _ := e.pending("crm"); return p == 0 })
	settle()
	if s := rc.sink.Seen(); len(s) != 1 {
		t.Errorf("delivered %v, want only %s", s, back.EventID())
	}
	supp, err := e.store.Suppressed(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{quiet.EventID(): "silenced", nps.EventID(): "silenced", held.EventID(): "holdout", late.EventID(): "silenced"}
	got := map[string]string{}
	for _, s := range supp {
		got[s.EventID] = s.Reason
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("suppressed %v, want %v", got, want)
	}
	for _, s := range supp {
		if s.Reason == "silenced" && !strings.Contains(s.Detail, "until") {
			t.Errorf("silenced without the silence named: %+v", s)
		}
	}
}

// TestStallGuard: while the watermark lags the wall clock by more than
// stall_after, absence notifications wait (not dropped, no attempt used);
// other notifications go; when the watermark catches up, the held ones go.
func TestStallGuard(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 5)
	rc := newReceiver(t, e.clock, key)
	behind := e.clock.now().Add(-3 * time.Hour)
	e.wm.Store(&behind)
	stop := e.dispatcher(config(endpointTo(rc, "crm", key)), nil)
	defer stop()
	vip := alert("vip-no-purchase-180d", "c1", alerts.Firing, behind)
	surge := alert("ticket-surge", "c2", alerts.Firing, behind)
	e.publish(vip, surge)
	waitFor(t, "the event-driven notification", func() bool { return rc.sink.Seen()[surge.EventID()] == 1 })
	waitFor(t, "the absence notification to be held", func() bool {
		return testutil.ToFloat64(e.metrics.WebhookHeld) >= 1
	})
	e.clock.advance(2 * time.Minute) // past the hold: still stalled, held again
	settle()
	if rc.sink.Seen()[vip.EventID()] != 0 || e.attempts("crm", vip.EventID()) != 0 {
		t.Fatal("an absence notification went out while the watermark was stalled")
	}
	caughtUp := e.clock.now().Add(-5 * time.Minute)
	e.wm.Store(&caughtUp)
	e.clock.advance(2 * time.Minute)
	waitFor(t, "the held notification", func() bool { return rc.sink.Seen()[vip.EventID()] == 1 })
}

// TestOutageExactlyOnce: an endpoint down for an hour while alerts arrive
// (each alert twice on the topic, and the dispatcher restarted in the
// middle), then back: the receiver sees every alert exactly once per
// webhook-id. Secrets, tokens and secret URL paths never reach the log.
func TestOutageExactlyOnce(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 6)
	rc := newReceiver(t, e.clock, key)
	var down atomic.Bool
	down.Store(true)
	rc.set(func(*http.Request) int {
		if down.Load() {
			return 503
		}
		return 0
	})
	const token = "hubspot-token-Zq81"
	ep := endpointTo(rc, "crm", key)
	ep.URL += "/services/T000/B000/secretpath42"
	ep.Headers = map[string]string{"Authorization": "Bearer " + token}
	cfg := config(ep)
	cfg.Caps = webhook.Caps{} // every alert is notified
	unreachable := &webhook.Endpoint{Name: "gone-host", URL: "http://127.0.0.1:1/hooks/secretpath42", Secrets: []webhook.Secret{key}, Timeout: time.Second}
	cfg.Endpoints = append(cfg.Endpoints, unreachable)

	var want []alerts.Alert
	for i := range 20 {
		want = append(want, alert("ticket-surge", fmt.Sprintf("c%02d", i), alerts.Firing, e.clock.now().Add(-time.Hour)))
	}
	stop := e.dispatcher(cfg, nil)
	e.publish(want[:10]...)
	e.publish(want[:10]...)
	waitFor(t, "first attempts", func() bool { return rc.count() >= 10 })
	stop()
	e.publish(want[10:]...)
	e.publish(want...)
	stop = e.dispatcher(cfg, nil)
	defer stop()
	for range 12 { // an hour in 5-minute steps: the endpoint stays down
		e.clock.advance(5 * time.Minute)
		time.Sleep(20 * time.Millisecond)
	}
	down.Store(false)
	e.clock.advance(3 * time.Hour) // past the next retry of each (2 h ± 10 %)
	waitFor(t, "every alert", func() bool { return len(rc.sink.Seen()) == len(want) })
	e.clock.advance(24 * time.Hour)
	settle()
	seen := rc.sink.Seen()
	for _, a := range want {
		if seen[a.EventID()] != 1 {
			t.Errorf("%s received %d times, want exactly once", a.EventID(), seen[a.EventID()])
		}
	}
	if p, _ := e.pending("crm"); p != 0 {
		t.Errorf("%d deliveries still pending", p)
	}
	logs := e.logs.String()
	for _, s := range []string{token, "secretpath42", base64.StdEncoding.EncodeToString(key)} {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains the secret %q", s)
		}
	}
	if !strings.Contains(logs, "gone-host") || !strings.Contains(logs, "127.0.0.1:1") {
		t.Error("the log does not say which endpoint failed")
	}
}

// TestTemplateAndRateLimit: an endpoint with the HubSpot template gets the
// task body as application/json, signed like any delivery, no faster than
// its rate limit.
func TestTemplateAndRateLimit(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 8)
	var mu sync.Mutex
	var times []time.Time
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		err := webhook.Verify(r.Header.Get(webhook.HeaderID), r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature),
			b, e.clock.now(), time.Minute, key)
		var v map[string]any
		if err != nil || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer t0k" || json.Unmarshal(b, &v) != nil {
			t.Errorf("request: %v, content type %q", err, r.Header.Get("Content-Type"))
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		times = append(times, time.Now())
		bodies = append(bodies, v)
		mu.Unlock()
		w.WriteHeader(201)
	}))
	defer srv.Close()
	tpl, err := webhook.ParseTemplate("hubspot", "")
	if err != nil {
		t.Fatal(err)
	}
	ep := &webhook.Endpoint{Name: "hubspot", URL: srv.URL, Secrets: []webhook.Secret{key}, Template: tpl, Timeout: time.Second,
		Headers: map[string]string{"Authorization": "Bearer t0k"}, RateLimit: 20, Burst: 1}
	const n = 8
	var as []alerts.Alert
	for i := range n {
		as = append(as, alert("ticket-surge", fmt.Sprint("r", i), alerts.Firing, e.clock.now()))
	}
	e.publish(as...)
	stop := e.dispatcher(config(ep), nil)
	defer stop()
	waitFor(t, "every task", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == n })
	mu.Lock()
	defer mu.Unlock()
	if span := times[n-1].Sub(times[0]); span < (n-1)*50*time.Millisecond*9/10 {
		t.Errorf("%d requests within %s, faster than 20 per second", n, span)
	}
	props, _ := bodies[0]["properties"].(map[string]any)
	if props["hs_task_priority"] != "HIGH" || !strings.Contains(fmt.Sprint(props["hs_task_subject"]), "ticket-surge") {
		t.Errorf("HubSpot task %v", bodies[0])
	}
}
