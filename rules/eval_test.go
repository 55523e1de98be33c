package rules

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
)

// typicalView is a VIP with a purchase history, some usage in three
// metrics, a ticket and a passive NPS answer: no built-in rule holds.
func typicalView() *View {
	v := view()
	v.Customer.HasSignup, v.Customer.SignedUpAt = true, now.Add(-500*day)
	v.Customer.Segment = "A"
	v.Customer.Attributes = map[string]string{"plan": "pro", "country": "DE", "currency": "EUR", "channel": "web", "owner": "jane"}
	v.Purchases = Purchases{Count: 14, Total: 4200, First: now.Add(-390 * day), Spend30: 300, Spend90: 900,
		Spend365: 3900, Interval: 28 * day}
	bought(v, 14, now.Add(-5*day))
	v.Usage = Usage{Last7: 40, Prior28: 170, WeeklyAvg28: 42.5, Metrics: map[string]MetricUsage{
		"sessions": {Last7: 30, Prior28: 130, WeeklyAvg28: 32.5}, "reports": {Last7: 8, Prior28: 32, WeeklyAvg28: 8},
		"exports": {Last7: 2, Prior28: 8, WeeklyAvg28: 2},
	}}
	used(v, now.Add(-time.Hour))
	v.Tickets = Tickets{Open: 1, Opened7: 1, Opened30: 1, Last: now.Add(-2 * day), LatestCSAT: 4}
	v.LastSeen["support_ticket"] = v.Tickets.Last
	v.Feedback = Feedback{NPS: 8, NPSCategory: "passive", CSAT: 4, CES: -1}
	v.LastSeen["feedback"] = now.Add(-40 * day)
	v.LastSeen["customer"] = now.Add(-100 * day)
	return v
}

// oversizedView has more attributes than the static cost estimate assumes.
func oversizedView() *View {
	v := typicalView()
	v.Customer.Attributes = map[string]string{}
	for i := range 20000 {
		v.Customer.Attributes["k"+strconv.Itoa(i)] = "v"
	}
	return v
}

func load(t testing.TB, src string) *Set {
	t.Helper()
	s, err := Load("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAbsence(t *testing.T) {
	// Absent purchases and usage for 10 days, since the signup, for a
	// customer first seen 100 days before now.
	r := load(t, `
rules:
  - id: quiet
    severity: low
    when: customer.tier == "vip"
    absent:
      events: [purchase, usage]
      for: 10d
      since: customer.signed_up_at
`).Get("quiet")
	tests := []struct {
		name     string
		edit     func(v *View)
		holds    bool
		deadline time.Time
	}{
		{"from first seen", func(v *View) {}, true, time.Time{}},
		{"first seen 10 days ago", func(v *View) { v.Customer.FirstSeen = now.Add(-10 * day) }, true, time.Time{}},
		{"first seen 9 days ago", func(v *View) { v.Customer.FirstSeen = now.Add(-9 * day) }, false, now.Add(day)},
		{"latest purchase", func(v *View) { v.LastSeen["purchase"] = now.Add(-3 * day) }, false, now.Add(7 * day)},
		{"latest usage", func(v *View) {
			v.LastSeen["purchase"], v.LastSeen["usage"] = now.Add(-30*day), now.Add(-4*day)
		}, false, now.Add(6 * day)},
		{"the later of purchase and usage", func(v *View) {
			v.LastSeen["purchase"], v.LastSeen["usage"] = now.Add(-4*day), now.Add(-30*day)
		}, false, now.Add(6 * day)},
		{"other types do not count", func(v *View) {
			v.LastSeen["feedback"], v.LastSeen["customer"], v.LastSeen["support_ticket"] = now, now, now
		}, true, time.Time{}},
		{"since is later", func(v *View) {
			v.LastSeen["usage"] = now.Add(-30 * day)
			v.Customer.SignedUpAt = now.Add(-2 * day)
		}, false, now.Add(8 * day)},
		{"since is earlier", func(v *View) {
			v.LastSeen["usage"] = now.Add(-5 * day)
			v.Customer.SignedUpAt = now.Add(-50 * day)
		}, false, now.Add(5 * day)},
		{"exactly at start + for", func(v *View) { v.LastSeen["usage"] = now.Add(-10 * day) }, true, time.Time{}},
		{"a nanosecond before", func(v *View) { v.LastSeen["usage"] = now.Add(-10*day + 1) }, false, now.Add(1)},
		{"an event in the future", func(v *View) { v.LastSeen["usage"] = now.Add(day) }, false, now.Add(11 * day)},
		{"deadline whatever when says", func(v *View) {
			v.Customer.Tier = "regular"
			v.LastSeen["usage"] = now.Add(-3 * day)
		}, false, now.Add(7 * day)},
		{"when false, absence held", func(v *View) { v.Customer.Tier = "regular" }, false, time.Time{}},
		{"never seen", func(v *View) { v.Customer.FirstSeen = time.Time{} }, false, time.Time{}},
		{"an unset since", func(v *View) {
			v.Customer.FirstSeen = time.Time{}
			v.Customer.SignedUpAt = time.Time{}
			v.LastSeen["usage"] = now.Add(-10 * day)
		}, true, time.Time{}},
		{"only a since", func(v *View) {
			v.Customer.FirstSeen = time.Time{}
			v.Customer.SignedUpAt = now.Add(-11 * day)
		}, true, time.Time{}},
		{"nil last_seen", func(v *View) { v.LastSeen = nil }, true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := view()
			v.Customer.FirstSeen = now.Add(-100 * day)
			tt.edit(v)
			res, err := r.Evaluate(v)
			if err != nil {
				t.Fatal(err)
			}
			if res.Holds != tt.holds || !res.Deadline.Equal(tt.deadline) {
				t.Errorf("holds %v deadline %s, want %v %s", res.Holds, res.Deadline, tt.holds, tt.deadline)
			}
		})
	}
}

func TestAbsenceForExpression(t *testing.T) {
	r := load(t, `
rules:
  - id: late
    severity: low
    absent:
      events: [purchase]
      for: max(scale(purchases.interval, 2.0), days(3))
`).Get("late")
	for _, tt := range []struct {
		interval, since time.Duration // since the last purchase
		holds           bool
		deadline        time.Time
	}{
		{0, 3 * day, true, time.Time{}},
		{0, 2 * day, false, now.Add(day)},
		{5 * day, 9 * day, false, now.Add(day)},
		{5 * day, 10 * day, true, time.Time{}},
		{36 * time.Hour, 2 * day, false, now.Add(day)},
	} {
		v := view()
		v.Purchases.Interval = tt.interval
		v.LastSeen["purchase"] = now.Add(-tt.since)
		res, err := r.Evaluate(v)
		if err != nil {
			t.Fatal(err)
		}
		if res.Holds != tt.holds || !res.Deadline.Equal(tt.deadline) {
			t.Errorf("interval %s, %s since: holds %v deadline %s, want %v %s", tt.interval, tt.since,
				res.Holds, res.Deadline, tt.holds, tt.deadline)
		}
	}
}

// TestHelpers evaluates the helper functions with now = 2026-06-01.
func TestHelpers(t *testing.T) {
	env, err := envOnce()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want string // "true", or an error's beginning
	}{
		{`days(2) == duration("48h")`, "true"},
		{`days(-1) == duration("-24h")`, "true"},
		{`days(0) == duration("0s")`, "true"},
		{`days(106752) > days(1)`, "days(106752) overflows a duration"},
		{`days_since(now) == 0`, "true"},
		{`days_since(timestamp("2026-05-30T12:00:00Z")) == 1`, "true"},
		{`days_since(timestamp("2026-05-30T00:00:00Z")) == 2`, "true"},
		{`days_since(timestamp("2026-06-02T12:00:00Z")) == -1`, "true"},
		{`days_between(timestamp("2026-01-01T00:00:00Z"), timestamp("2026-03-01T00:00:00Z")) == 59`, "true"},
		{`days_since(purchases.last) == 20605 && !has(purchases.last)`, "true"}, // a zero time is the epoch
		{`customer.signed_up_at == timestamp("1970-01-01T00:00:00Z")`, "true"},
		{`scale(duration("10h"), 1.5) == duration("15h")`, "true"},
		{`scale(duration("10h"), 0.0) == duration("0s")`, "true"},
		{`scale(duration("1s"), -2.0) == duration("-2s")`, "true"},
		{`scale(days(1), 1e300) > days(1)`, "scale: duration overflow"},
		{`scale(days(1), 0.0/0.0) > days(1)`, "scale: duration overflow"},
		{`max(days(1), duration("25h")) == duration("25h")`, "true"},
		{`max(days(2), duration("25h")) == days(2)`, "true"},
		{`max(duration("-1s"), duration("0s")) == duration("0s")`, "true"},
		{`is_milestone(10) && is_milestone(25) && is_milestone(2500) && !is_milestone(20) && !is_milestone(0)`, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			ast, iss := env.Compile(tt.expr)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			prg, err := newProgram(env, ast)
			if err != nil {
				t.Fatal(err)
			}
			v := view()
			got, err := prg.eval(v, true)
			switch {
			case err != nil:
				if !strings.HasPrefix(err.Error(), tt.want) {
					t.Errorf("error %q, want %q", err, tt.want)
				}
			case got != types.True || tt.want != "true":
				t.Errorf("= %v, want %s", got, tt.want)
			}
		})
	}
}

// TestRuntimeCostLimit: a view with more entries than the static estimate
// assumed is evaluated under the run-time limit.
func TestRuntimeCostLimit(t *testing.T) {
	r := load(t, `
rules:
  - id: plan
    severity: low
    when: customer.attributes.exists(k, k == "zzz")
    reasons: '[customer.attributes.exists(k, k == "zzz") ? "zzz" : "none"]'
`).Get("plan")
	if _, err := r.Evaluate(typicalView()); err != nil {
		t.Fatal(err)
	}
	v := oversizedView()
	_, err := r.Evaluate(v)
	if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Errorf("Evaluate: %v, want the cost limit exceeded", err)
	}
	if _, err := r.Reasons(v); err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Errorf("Reasons: %v, want the cost limit exceeded", err)
	}
}

func TestEvaluateErrors(t *testing.T) {
	s := load(t, `
rules:
  - id: missing-key
    severity: low
    when: customer.attributes["plan"] == "pro"
  - id: overflow
    severity: low
    absent:
      events: [usage]
      for: scale(purchases.interval, 1e300)
`)
	v := view()
	v.Purchases.Interval = day
	if _, err := s.Get("missing-key").Evaluate(v); err == nil || !strings.HasPrefix(err.Error(), "when: no such key") {
		t.Errorf("missing-key: %v", err)
	}
	if _, err := s.Get("overflow").Evaluate(v); err == nil || !strings.HasPrefix(err.Error(), "absent.for: scale") {
		t.Errorf("overflow: %v", err)
	}
}

// TestConcurrentEvaluate evaluates every built-in rule from many goroutines
// (run it with -race) and compares with one goroutine's results.
func TestConcurrentEvaluate(t *testing.T) {
	views := make([]*View, 50)
	for i := range views {
		v := typicalView()
		bought(v, int64(i), now.Add(-time.Duration(i*5)*day))
		v.Purchases.Interval = time.Duration(i) * day
		v.Usage.Last7 = float64(i)
		v.Tickets.Opened30 = int64(i % 5)
		v.Feedback.NPS = int64(i%12) - 1
		views[i] = v
	}
	rs := Builtin().Rules
	want := make([]string, len(views))
	describe := func(v *View) string {
		var b strings.Builder
		for _, r := range rs {
			res, err := r.Evaluate(v)
			reasons, rerr := r.Reasons(v)
			fmt.Fprintf(&b, "%s %v %s %v %q %v\n", r.ID, res.Holds, res.Deadline, err, reasons, rerr)
		}
		return b.String()
	}
	for i, v := range views {
		want[i] = describe(v)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 200 {
				i := (g*31 + k) % len(views)
				if got := describe(views[i]); got != want[i] {
					t.Errorf("view %d: %s, want %s", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkEvaluateBuiltin evaluates every built-in rule (not their
// reasons) on a typical view, as the engine does after each event.
func BenchmarkEvaluateBuiltin(b *testing.B) {
	v := typicalView()
	rs := Builtin().Rules
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rs {
			if _, err := r.Evaluate(v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReasonsBuiltin words the reasons of every built-in rule, as the
// engine does when an alert fires.
func BenchmarkReasonsBuiltin(b *testing.B) {
	v := typicalView()
	rs := Builtin().Rules
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rs {
			if _, err := r.Reasons(v); err != nil {
				b.Fatal(err)
			}
		}
	}
}
