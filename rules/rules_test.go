package rules

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// view is a customer first seen 400 days before now who did nothing else.
func view() *View {
	return &View{
		Now:      now,
		Customer: Customer{ID: "c", Tier: "vip", FirstSeen: now.Add(-400 * day), Attributes: map[string]string{}},
		Feedback: Feedback{NPS: -1, CSAT: -1, CES: -1},
		LastSeen: map[string]time.Time{},
		Usage:    Usage{Metrics: map[string]MetricUsage{}},
	}
}

// bought records the customer's last purchase, count purchases in all.
func bought(v *View, count int64, last time.Time) {
	v.Purchases.Count, v.Purchases.Last = count, last
	v.LastSeen["purchase"] = last
}

// used records the customer's last usage event.
func used(v *View, last time.Time) {
	v.Usage.Last = last
	v.LastSeen["usage"] = last
}

func TestBuiltinLoads(t *testing.T) {
	s := Builtin()
	want := []struct {
		id, severity string
		weight       float64
		instant      bool
	}{
		{"vip-no-purchase-180d", "high", 0.45, false},
		{"purchase-overdue", "medium", 0.30, false},
		{"usage-drop", "medium", 0.30, false},
		{"ticket-surge", "medium", 0.30, false},
		{"nps-detractor", "medium", 0.30, false},
		{"onboarding-stalled", "low", 0.15, false},
		{"loyalty-milestone", "info", 0, true},
	}
	if len(s.Rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(s.Rules), len(want))
	}
	for i, w := range want {
		r := s.Rules[i]
		if r.ID != w.id || s.Get(w.id) != r || r.Severity != w.severity || r.Weight != w.weight || r.Instant != w.instant {
			t.Errorf("rule %d: %s %s weight %v instant %v, want %+v", i, r.ID, r.Severity, r.Weight, r.Instant, w)
		}
		if r.Description == "" {
			t.Errorf("%s has no description", r.ID)
		}
	}
}

func TestBuiltinRules(t *testing.T) {
	tests := []struct {
		rule, name string
		edit       func(v *View)
		holds      bool
		deadline   time.Time
		reasons    []string // when holds
	}{
		{"vip-no-purchase-180d", "181 days", func(v *View) { bought(v, 1, now.Add(-181*day)) },
			true, time.Time{}, []string{"no purchase for 181 days", "tier vip"}},
		{"vip-no-purchase-180d", "exactly 180 days", func(v *View) { bought(v, 1, now.Add(-180*day)) },
			true, time.Time{}, []string{"no purchase for 180 days", "tier vip"}},
		{"vip-no-purchase-180d", "a nanosecond short", func(v *View) { bought(v, 1, now.Add(-180*day+1)) },
			false, now.Add(1), nil},
		{"vip-no-purchase-180d", "179 days", func(v *View) { bought(v, 1, now.Add(-179*day)) },
			false, now.Add(day), nil},
		{"vip-no-purchase-180d", "never bought, first seen 200 days ago", func(v *View) { v.Customer.FirstSeen = now.Add(-200 * day) },
			true, time.Time{}, []string{"no purchase since first seen 200 days ago", "tier vip"}},
		{"vip-no-purchase-180d", "never bought, first seen yesterday", func(v *View) { v.Customer.FirstSeen = now.Add(-day) },
			false, now.Add(179 * day), nil},
		{"vip-no-purchase-180d", "other events do not count", func(v *View) {
			bought(v, 1, now.Add(-200*day))
			used(v, now.Add(-time.Hour))
			v.LastSeen["customer"], v.LastSeen["feedback"] = now, now
		}, true, time.Time{}, []string{"no purchase for 200 days", "tier vip"}},
		{"vip-no-purchase-180d", "not vip", func(v *View) { v.Customer.Tier = "regular" }, false, time.Time{}, nil},
		{"vip-no-purchase-180d", "not vip, deadline all the same", func(v *View) {
			v.Customer.Tier = "gold"
			bought(v, 4, now.Add(-10*day))
		}, false, now.Add(170 * day), nil},

		{"purchase-overdue", "3 × 20 days", func(v *View) { bought(v, 3, now.Add(-60*day)); v.Purchases.Interval = 20 * day },
			true, time.Time{}, []string{"no purchase for 60 days", "usually buys every 20 days"}},
		{"purchase-overdue", "a nanosecond short of 3 × 20 days", func(v *View) {
			bought(v, 3, now.Add(-60*day+1))
			v.Purchases.Interval = 20 * day
		}, false, now.Add(1), nil},
		{"purchase-overdue", "3 × 5 days, but 30 days at least", func(v *View) {
			bought(v, 5, now.Add(-20*day))
			v.Purchases.Interval = 5 * day
		}, false, now.Add(10 * day), nil},
		{"purchase-overdue", "30 days", func(v *View) { bought(v, 5, now.Add(-30*day)); v.Purchases.Interval = 5 * day },
			true, time.Time{}, []string{"no purchase for 30 days", "usually buys every 5 days"}},
		{"purchase-overdue", "two purchases", func(v *View) { bought(v, 2, now.Add(-300*day)); v.Purchases.Interval = 5 * day },
			false, time.Time{}, nil},

		{"usage-drop", "below half", func(v *View) { v.Usage.Last7, v.Usage.WeeklyAvg28 = 2, 10 },
			true, time.Time{}, []string{"usage 2 in the last 7 days, weekly average before 10"}},
		{"usage-drop", "just below half", func(v *View) { v.Usage.Last7, v.Usage.WeeklyAvg28 = 2.49, 5 }, true, time.Time{}, nil},
		{"usage-drop", "exactly half", func(v *View) { v.Usage.Last7, v.Usage.WeeklyAvg28 = 2.5, 5 }, false, time.Time{}, nil},
		{"usage-drop", "average under 5", func(v *View) { v.Usage.Last7, v.Usage.WeeklyAvg28 = 0, 4.99 }, false, time.Time{}, nil},

		{"ticket-surge", "3 tickets", func(v *View) { v.Tickets.Opened30, v.Tickets.Open = 3, 1 },
			true, time.Time{}, []string{"3 tickets opened in 30 days", "1 open"}},
		{"ticket-surge", "2 tickets", func(v *View) { v.Tickets.Opened30 = 2 }, false, time.Time{}, nil},

		{"nps-detractor", "6", func(v *View) { v.Feedback.NPS = 6 }, true, time.Time{}, []string{"NPS 6 (detractor)"}},
		{"nps-detractor", "0", func(v *View) { v.Feedback.NPS = 0 }, true, time.Time{}, []string{"NPS 0 (detractor)"}},
		{"nps-detractor", "7", func(v *View) { v.Feedback.NPS = 7 }, false, time.Time{}, nil},
		{"nps-detractor", "none", func(v *View) {}, false, time.Time{}, nil},

		{"onboarding-stalled", "14 days", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-14*day), true
			v.Customer.FirstSeen = now.Add(-14 * day)
		}, true, time.Time{}, []string{"signed up 14 days ago, no purchase or usage since"}},
		{"onboarding-stalled", "a nanosecond short", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-14*day+1), true
			v.Customer.FirstSeen = v.Customer.SignedUpAt
		}, false, now.Add(1), nil},
		{"onboarding-stalled", "10 days", func(v *View) { v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-10*day), true },
			false, now.Add(4 * day), nil},
		{"onboarding-stalled", "purchase before signup", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-20*day), true
			bought(v, 1, now.Add(-30*day))
		}, true, time.Time{}, []string{"signed up 20 days ago, no purchase or usage since"}},
		{"onboarding-stalled", "used since", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-40*day), true
			used(v, now.Add(-19*day))
		}, false, time.Time{}, nil},
		{"onboarding-stalled", "bought since", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-40*day), true
			bought(v, 1, now.Add(-day))
		}, false, now.Add(13 * day), nil},
		{"onboarding-stalled", "first seen after signup", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-300*day), true
			v.Customer.FirstSeen = now.Add(-3 * day)
		}, false, now.Add(11 * day), nil},
		{"onboarding-stalled", "no signup", func(v *View) {}, false, time.Time{}, nil},

		{"loyalty-milestone", "25th purchase now", func(v *View) { bought(v, 25, now) }, true, time.Time{}, []string{"25 purchases"}},
		{"loyalty-milestone", "25th purchase yesterday", func(v *View) { bought(v, 25, now.Add(-day)) }, false, time.Time{}, nil},
		{"loyalty-milestone", "26th purchase now", func(v *View) { bought(v, 26, now) }, false, time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.name, func(t *testing.T) {
			v := view()
			tt.edit(v)
			r := Builtin().Get(tt.rule)
			res, err := r.Evaluate(v)
			if err != nil {
				t.Fatal(err)
			}
			if res.Holds != tt.holds || !res.Deadline.Equal(tt.deadline) {
				t.Fatalf("holds %v deadline %s, want %v %s", res.Holds, res.Deadline, tt.holds, tt.deadline)
			}
			if !tt.holds {
				return
			}
			reasons, err := r.Reasons(v)
			if err != nil {
				t.Fatal(err)
			}
			if tt.reasons != nil && !slices.Equal(reasons, tt.reasons) {
				t.Fatalf("reasons %q, want %q", reasons, tt.reasons)
			}
		})
	}
}

// TestLoyaltyMilestoneFiresOnce replays a customer's purchases the way the
// engine evaluates: after each applied event at its occurred_at, and at
// timers in between. An instant rule fires on each false → true transition.
func TestLoyaltyMilestoneFiresOnce(t *testing.T) {
	r := Builtin().Get("loyalty-milestone")
	v := view()
	var fired []int64
	was := false
	eval := func(at time.Time) {
		v.Now = at
		res, err := r.Evaluate(v)
		if err != nil {
			t.Fatal(err)
		}
		if res.Holds && !was {
			fired = append(fired, v.Purchases.Count)
		}
		was = res.Holds
	}
	at := now
	for n := int64(1); n <= 60; n++ {
		at = at.Add(3 * day)
		bought(v, n, at)
		eval(at) // the purchase
		used(v, at)
		eval(at) // a usage event at the same instant
		eval(at) // a timer due at the same instant
		used(v, at.Add(time.Hour))
		eval(at.Add(time.Hour)) // a later usage event
		eval(at.Add(day))       // a later timer
	}
	if !slices.Equal(fired, []int64{10, 25, 50}) {
		t.Errorf("fired at purchases %v, want [10 25 50]", fired)
	}
}

func TestIsMilestone(t *testing.T) {
	want := map[int64]bool{}
	for p := int64(1); p <= 1e17; p *= 10 {
		want[10*p], want[25*p], want[50*p] = true, true, true
	}
	for n := int64(-100); n <= 1e6; n++ {
		if IsMilestone(n) != want[n] {
			t.Errorf("IsMilestone(%d) = %v", n, !want[n])
		}
	}
	for n := range want {
		for _, m := range []int64{n - 1, n, n + 1} {
			if IsMilestone(m) != want[m] {
				t.Errorf("IsMilestone(%d) = %v", m, !want[m])
			}
		}
	}
	for _, n := range []int64{1e18, 5e18, 1<<63 - 1, -1 << 63, 9e18, 4611686018427387904} {
		if IsMilestone(n) != (n == 1e18 || n == 5e18) {
			t.Errorf("IsMilestone(%d) = %v", n, IsMilestone(n))
		}
	}
}

func TestScore(t *testing.T) {
	high := &Rule{ID: "h", Weight: 0.45}
	med := &Rule{ID: "m", Weight: 0.30}
	low := &Rule{ID: "l", Weight: 0.15}
	crit := &Rule{ID: "c", Weight: 0.60}
	info := &Rule{ID: "i", Weight: 0}
	all := &Rule{ID: "a", Weight: 1}
	tests := []struct {
		name    string
		in      []Scored
		score   int
		reasons []string
	}{
		{"none", nil, 0, nil},
		{"one high", []Scored{{high, []string{"a", "b"}}}, 45, []string{"a", "b"}},
		{"high and medium", []Scored{{high, []string{"a"}}, {med, []string{"a", "c"}}}, 62, []string{"a", "c"}}, // 100 × (1 − 0.55 × 0.7) = 61.5
		{"medium and low", []Scored{{med, nil}, {low, nil}}, 41, nil},                                           // 40.5
		{"two medium", []Scored{{med, []string{"x"}}, {med, []string{"y", "x"}}}, 51, []string{"x", "y"}},
		{"every severity", []Scored{{crit, nil}, {high, nil}, {med, nil}, {low, nil}, {info, nil}}, 87, nil}, // 1 − .4 × .55 × .7 × .85
		{"info adds nothing", []Scored{{info, []string{"10 purchases"}}}, 0, nil},
		{"certain", []Scored{{all, []string{"z"}}, {crit, nil}}, 100, []string{"z"}},
		{"many", slices.Repeat([]Scored{{crit, []string{"c"}}}, 50), 100, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := Score(tt.in)
			if s != tt.score || !slices.Equal(r, tt.reasons) {
				t.Errorf("Score = %d %q, want %d %q", s, r, tt.score, tt.reasons)
			}
			var rs []*Rule
			for _, h := range tt.in {
				rs = append(rs, h.Rule)
			}
			if got := Risk(rs); got != tt.score {
				t.Errorf("Risk = %d, want %d", got, tt.score)
			}
		})
	}
}

func TestReadsTime(t *testing.T) {
	want := map[string]bool{
		"vip-no-purchase-180d": false, "purchase-overdue": false, "usage-drop": true, "ticket-surge": true,
		"nps-detractor": false, "onboarding-stalled": false, "loyalty-milestone": true,
	}
	for _, r := range Builtin().Rules {
		if r.ReadsTime != want[r.ID] {
			t.Errorf("%s: ReadsTime %v, want %v", r.ID, r.ReadsTime, want[r.ID])
		}
	}
	s, err := Load("f.yaml", []byte("rules:\n  - id: a\n    severity: low\n    when: usage.metrics.exists(m, m == 'x')\n  - id: b\n    severity: low\n    when: days_since(purchases.last) > 3\n  - id: c\n    severity: low\n    when: customer.tier == 'vip'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Get("a").ReadsTime || !s.Get("b").ReadsTime || s.Get("c").ReadsTime {
		t.Errorf("a, b read time; c does not: %v %v %v", s.Get("a").ReadsTime, s.Get("b").ReadsTime, s.Get("c").ReadsTime)
	}
}

func TestBuiltinYAMLIsACopy(t *testing.T) {
	b := BuiltinYAML()
	b[0] = 'X'
	if !strings.HasPrefix(string(BuiltinYAML()), "#") {
		t.Error("BuiltinYAML returned the embedded bytes")
	}
}
