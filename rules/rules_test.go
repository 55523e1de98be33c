package rules

import (
	"strings"
	"testing"
	"time"
)

func TestBuiltinLoads(t *testing.T) {
	s := Builtin()
	want := []string{"vip-no-purchase-180d", "purchase-overdue", "usage-drop", "ticket-surge", "nps-detractor", "onboarding-stalled", "loyalty-milestone"}
	if len(s.Rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(s.Rules), len(want))
	}
	for i, id := range want {
		if s.Rules[i].ID != id || s.Get(id) != s.Rules[i] {
			t.Errorf("rule %d is %q, want %q", i, s.Rules[i].ID, id)
		}
	}
	if r := s.Get("loyalty-milestone"); !r.Instant || r.Severity != "info" {
		t.Errorf("loyalty-milestone: instant %v severity %s", r.Instant, r.Severity)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"bad yaml", "rules: [", "f.yaml"},
		{"no rules", "rules: []", "f.yaml:1: rules: no rules"},
		{"unknown key", "rules:\n  - id: a\n    severity: low\n    when: true\n    wen: false\n", `f.yaml:5: unknown key "wen"`},
		{"bad severity", "rules:\n  - id: a\n    severity: urgent\n    when: true\n", `f.yaml:2: rule "a": severity "urgent"`},
		{"bad id", "rules:\n  - id: A B\n    severity: low\n    when: true\n", `id "A B"`},
		{"duplicate", "rules:\n  - id: a\n    severity: low\n    when: true\n  - id: a\n    severity: low\n    when: true\n", `f.yaml:5: rule "a": duplicate id`},
		{"syntax", "rules:\n  - id: a\n    severity: low\n    when: purchases.count >\n", `f.yaml:4: rule "a": when: Syntax error`},
		{"undeclared", "rules:\n  - id: a\n    severity: low\n\n    when: foo == 1\n", `f.yaml:5: rule "a": when: undeclared reference to 'foo'`},
		{"wrong type", "rules:\n  - id: a\n    severity: low\n    when: purchases.count\n", "want an expression of type bool, got int"},
		{"reasons type", "rules:\n  - id: a\n    severity: low\n    when: true\n    reasons: '\"x\"'\n", "want an expression of type list(string)"},
		{"absent events", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [refund]\n      for: 3d\n", `f.yaml:5: rule "a": absent.events: unknown event type "refund"`},
		{"absent for type", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: purchases.count\n", "want an expression of type duration, got int"},
		{"no condition", "rules:\n  - id: a\n    severity: low\n", "needs a when condition"},
		{"weight", "rules:\n  - id: a\n    severity: low\n    when: true\n    weight: 2\n", "weight: want a number from 0 to 1"},
		{"hostile", "rules:\n  - id: a\n    severity: low\n    when: customer.attributes.all(a, customer.attributes.all(b, customer.attributes.all(c, customer.attributes.all(d, a + b + c + d != ''))))\n", "too expensive"},
		{"two errors", "rules:\n  - id: a\n    severity: bad\n    when: true\n  - id: b\n    severity: low\n    when: nope\n", "f.yaml:7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("f.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func view() *View {
	return &View{
		Now:      now,
		Customer: Customer{ID: "c", Tier: "vip", FirstSeen: now.Add(-400 * 24 * time.Hour), Attributes: map[string]string{}},
		Feedback: Feedback{NPS: -1, CSAT: -1, CES: -1},
		LastSeen: map[string]time.Time{},
		Usage:    Usage{Metrics: map[string]MetricUsage{}},
	}
}

func TestBuiltinRules(t *testing.T) {
	d := 24 * time.Hour
	tests := []struct {
		rule     string
		edit     func(v *View)
		holds    bool
		deadline time.Time
		reason   string
	}{
		{"vip-no-purchase-180d", func(v *View) {
			v.Purchases = Purchases{Count: 1, Last: now.Add(-181 * d)}
			v.LastSeen["purchase"] = v.Purchases.Last
		}, true, time.Time{}, "no purchase for 181 days"},
		{"vip-no-purchase-180d", func(v *View) {
			v.Purchases = Purchases{Count: 1, Last: now.Add(-180 * d)}
			v.LastSeen["purchase"] = v.Purchases.Last
		}, true, time.Time{}, "no purchase for 180 days"},
		{"vip-no-purchase-180d", func(v *View) {
			v.Purchases = Purchases{Count: 1, Last: now.Add(-179 * d)}
			v.LastSeen["purchase"] = v.Purchases.Last
		}, false, now.Add(d), ""},
		{"vip-no-purchase-180d", func(v *View) { v.Customer.FirstSeen = now.Add(-d) }, false, now.Add(179 * d), ""},
		{"vip-no-purchase-180d", func(v *View) { v.Customer.Tier = "regular" }, false, time.Time{}, ""},
		{"purchase-overdue", func(v *View) {
			v.Purchases = Purchases{Count: 3, Interval: 20 * d, Last: now.Add(-60 * d)}
			v.LastSeen["purchase"] = v.Purchases.Last
		}, true, time.Time{}, "usually buys every 20 days"},
		{"purchase-overdue", func(v *View) {
			v.Purchases = Purchases{Count: 3, Interval: 5 * d, Last: now.Add(-20 * d)}
			v.LastSeen["purchase"] = v.Purchases.Last
		}, false, now.Add(10 * d), ""},
		{"usage-drop", func(v *View) { v.Usage.Last7, v.Usage.WeeklyAvg28 = 2, 10 }, true, time.Time{}, "usage 2 in the last 7 days"},
		{"usage-drop", func(v *View) { v.Usage.Last7, v.Usage.WeeklyAvg28 = 1, 4 }, false, time.Time{}, ""},
		{"ticket-surge", func(v *View) { v.Tickets.Opened30 = 3 }, true, time.Time{}, "3 tickets opened in 30 days"},
		{"ticket-surge", func(v *View) { v.Tickets.Opened30 = 2 }, false, time.Time{}, ""},
		{"nps-detractor", func(v *View) { v.Feedback.NPS = 6 }, true, time.Time{}, "NPS 6 (detractor)"},
		{"nps-detractor", func(v *View) { v.Feedback.NPS = 7 }, false, time.Time{}, ""},
		{"nps-detractor", func(v *View) {}, false, time.Time{}, ""},
		{"onboarding-stalled", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-14*d), true
			v.Customer.FirstSeen = now.Add(-14 * d)
		}, true, time.Time{}, "signed up 14 days ago"},
		{"onboarding-stalled", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-20*d), true
			v.LastSeen["usage"] = now.Add(-19 * d)
			v.Usage.Last = now.Add(-19 * d)
		}, false, time.Time{}, ""},
		{"onboarding-stalled", func(v *View) {
			v.Customer.SignedUpAt, v.Customer.HasSignup = now.Add(-10*d), true
		}, false, now.Add(4 * d), ""},
		{"loyalty-milestone", func(v *View) { v.Purchases.Count, v.Purchases.Last = 25, now; v.LastSeen["purchase"] = now }, true, time.Time{}, "25 purchases"},
		{"loyalty-milestone", func(v *View) {
			v.Purchases.Count, v.Purchases.Last = 25, now.Add(-d)
			v.LastSeen["purchase"] = now.Add(-d)
		}, false, time.Time{}, ""},
		{"loyalty-milestone", func(v *View) { v.Purchases.Count, v.Purchases.Last = 26, now; v.LastSeen["purchase"] = now }, false, time.Time{}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.rule+"/"+string(rune('a'+i)), func(t *testing.T) {
			v := view()
			tt.edit(v)
			res, err := Builtin().Get(tt.rule).Evaluate(v)
			if err != nil {
				t.Fatal(err)
			}
			if res.Holds != tt.holds || !res.Deadline.Equal(tt.deadline) {
				t.Fatalf("holds %v deadline %s, want %v %s", res.Holds, res.Deadline, tt.holds, tt.deadline)
			}
			if tt.reason == "" {
				return
			}
			reasons, err := Builtin().Get(tt.rule).Reasons(v)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(reasons, "|"), tt.reason) {
				t.Fatalf("reasons %q lack %q", reasons, tt.reason)
			}
		})
	}
}

func TestIsMilestone(t *testing.T) {
	var got []int64
	for n := int64(0); n <= 10000; n++ {
		if IsMilestone(n) {
			got = append(got, n)
		}
	}
	want := []int64{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
	if len(got) != len(want) {
		t.Fatalf("milestones %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("milestones %v, want %v", got, want)
		}
	}
}

func TestScore(t *testing.T) {
	high := &Rule{ID: "h", Weight: 0.45}
	med := &Rule{ID: "m", Weight: 0.30}
	info := &Rule{ID: "i", Weight: 0}
	tests := []struct {
		in      []Scored
		score   int
		reasons int
	}{
		{nil, 0, 0},
		{[]Scored{{high, []string{"a", "b"}}}, 45, 2},
		{[]Scored{{high, []string{"a"}}, {med, []string{"a", "c"}}}, 62, 2}, // 1 − 0.55×0.7
		{[]Scored{{info, []string{"x"}}}, 0, 0},
	}
	for _, tt := range tests {
		s, r := Score(tt.in)
		if s != tt.score || len(r) != tt.reasons {
			t.Errorf("Score(%v) = %d %v, want %d with %d reasons", tt.in, s, r, tt.score, tt.reasons)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(BuiltinYAML())
	f.Add([]byte("rules:\n  - id: a\n    severity: low\n    when: tickets.open > 2\n"))
	f.Add([]byte("rules:\n  - id: a\n    severity: low\n    absent: {events: [usage], for: 'days(3)'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Load("fuzz.yaml", data)
		if err != nil {
			return
		}
		v := view()
		for _, r := range s.Rules {
			r.Evaluate(v) //nolint:errcheck // must not panic; errors are fine
		}
	})
}

func BenchmarkEvaluateBuiltin(b *testing.B) {
	v := view()
	v.Purchases = Purchases{Count: 5, Interval: 20 * 24 * time.Hour, Last: now.Add(-3 * 24 * time.Hour)}
	v.LastSeen["purchase"] = v.Purchases.Last
	v.Usage.Last7, v.Usage.WeeklyAvg28 = 10, 9
	rs := Builtin().Rules
	for b.Loop() {
		for _, r := range rs {
			if _, err := r.Evaluate(v); err != nil {
				b.Fatal(err)
			}
		}
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
