package rules

import (
	"strings"
	"testing"
	"time"
)

func TestLoadErrors(t *testing.T) {
	long := "rules:\n  - id: a\n    severity: low\n    when: " + strings.Repeat("1 + ", maxExprLength/4) + "1 > 0\n"
	tests := []struct {
		name string
		src  string
		want []string // each must be one of the error's lines, as a prefix
	}{
		{"bad yaml", "rules: [", []string{"f.yaml:1: did not find expected node content"}},
		{"bad yaml without line", "a: b: c", []string{"f.yaml: mapping values are not allowed in this context"}},
		{"empty file", "", []string{"f.yaml: no rules"}},
		{"empty list", "rules: []", []string{"f.yaml:1: rules: no rules"}},
		{"not a mapping", "- a\n", []string{"f.yaml:1: want a mapping with a rules: list"}},
		{"no rules key", "rule:\n  - id: a\n", []string{`f.yaml:1: unknown key "rule" (known: rules)`, "f.yaml:1: missing rules: list"}},
		{"rules not a list", "rules: a\n", []string{"f.yaml:1: rules: want a list"}},
		{"rule not a mapping", "rules:\n  - a\n", []string{"f.yaml:2: rule: want a mapping"}},
		{"unknown key", "rules:\n  - id: a\n    severity: low\n    when: true\n    wen: false\n",
			[]string{`f.yaml:5: unknown key "wen" (known: absent, description, id, instant, reasons, severity, weight, when)`}},
		{"unknown absent key", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: 3d\n      until: now\n",
			[]string{`f.yaml:7: unknown key "until" (known: events, for, since)`}},
		{"repeated key", "rules:\n  - id: a\n    severity: low\n    when: true\n    when: false\n", []string{`f.yaml:5: key "when" repeated`}},
		{"bad severity", "rules:\n  - id: a\n    severity: urgent\n    when: true\n",
			[]string{`f.yaml:2: rule "a": severity "urgent" must be one of info, low, medium, high, critical`}},
		{"no severity", "rules:\n  - id: a\n    when: true\n", []string{`f.yaml:2: rule "a": severity ""`}},
		{"bad id", "rules:\n  - id: A B\n    severity: low\n    when: true\n", []string{`f.yaml:2: rule: id "A B" must be`}},
		{"no id", "rules:\n  - severity: low\n    when: true\n", []string{`f.yaml:2: rule: id "" must be`}},
		{"id not a scalar", "rules:\n  - id: [a]\n    severity: low\n    when: true\n", []string{"f.yaml:2: id: want a single value"}},
		{"duplicate id", "rules:\n  - id: a\n    severity: low\n    when: true\n  - id: a\n    severity: low\n    when: true\n",
			[]string{`f.yaml:5: rule "a": duplicate id`}},
		{"syntax error", "rules:\n  - id: a\n    severity: low\n    when: purchases.count >\n", []string{`f.yaml:4: rule "a": when: Syntax error`}},
		{"syntax error in a literal block", "rules:\n  - id: a\n    severity: low\n    when: |\n      purchases.count > 1 &&\n      ) + 1\n",
			[]string{`f.yaml:6: rule "a": when: Syntax error`}},
		{"undeclared variable", "rules:\n  - id: a\n    severity: low\n\n    when: foo == 1\n",
			[]string{`f.yaml:5: rule "a": when: undeclared reference to 'foo' (column 1 of the expression)`}},
		{"undeclared in a literal block", "rules:\n  - id: a\n    severity: low\n    when: |\n      purchases.count > 1 &&\n      nope\n",
			[]string{`f.yaml:6: rule "a": when: undeclared reference to 'nope'`}},
		{"undeclared in a folded block", "rules:\n  - id: a\n    severity: low\n    when: >-\n      purchases.count > 1 &&\n      nope\n",
			[]string{`f.yaml:5: rule "a": when: undeclared reference to 'nope'`}},
		{"undeclared field", "rules:\n  - id: a\n    severity: low\n    when: customer.teir == 'vip'\n",
			[]string{`f.yaml:4: rule "a": when: undefined field 'teir'`}},
		{"when type", "rules:\n  - id: a\n    severity: low\n    when: purchases.count\n",
			[]string{`f.yaml:4: rule "a": when: want an expression of type bool, got int`}},
		{"reasons type", "rules:\n  - id: a\n    severity: low\n    when: true\n    reasons: '\"x\"'\n",
			[]string{`f.yaml:5: rule "a": reasons: want an expression of type list(string), got string`}},
		{"reasons list type", "rules:\n  - id: a\n    severity: low\n    when: true\n    reasons: '[1]'\n",
			[]string{`f.yaml:5: rule "a": reasons: want an expression of type list(string), got list(int)`}},
		{"for type", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: purchases.count\n",
			[]string{`f.yaml:6: rule "a": absent.for: want an expression of type duration, got int`}},
		{"since type", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: 3d\n      since: customer.tier\n",
			[]string{`f.yaml:7: rule "a": absent.since: want an expression of type timestamp, got string`}},
		{"unknown event type", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [refund]\n      for: 3d\n",
			[]string{`f.yaml:5: rule "a": absent.events: unknown event type "refund"`}},
		{"no events", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: []\n      for: 3d\n",
			[]string{`f.yaml:5: rule "a": absent.events: want a non-empty list`, `f.yaml:5: rule "a": absent: missing events`}},
		{"no for", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n", []string{`f.yaml:5: rule "a": absent: missing for`}},
		{"zero for", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: 0d\n",
			[]string{`f.yaml:6: rule "a": absent.for must be positive`}},
		{"negative for", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: -5m\n",
			[]string{`f.yaml:6: rule "a": absent.for must be positive`}},
		{"huge for", "rules:\n  - id: a\n    severity: low\n    absent:\n      events: [usage]\n      for: 99999999999999999999d\n",
			[]string{`f.yaml:6: rule "a": absent.for: 99999999999999999999d is longer than 36500 days`}},
		{"absent not a mapping", "rules:\n  - id: a\n    severity: low\n    absent: 3d\n", []string{`f.yaml:4: rule "a": absent: want a mapping`}},
		{"no condition", "rules:\n  - id: a\n    severity: low\n", []string{`f.yaml:2: rule "a": needs a when condition, an absent clause or both`}},
		{"instant not a bool", "rules:\n  - id: a\n    severity: low\n    instant: yes\n    when: true\n", []string{`f.yaml:4: instant: want true or false, got "yes"`}},
		{"instant absence", "rules:\n  - id: a\n    severity: low\n    instant: true\n    absent: {events: [usage], for: 3d}\n",
			[]string{`f.yaml:2: rule "a": an instant rule cannot have an absence clause`}},
		{"weight", "rules:\n  - id: a\n    severity: low\n    when: true\n    weight: 2\n", []string{`f.yaml:5: weight: want a number from 0 to 1, got "2"`}},
		{"weight nan", "rules:\n  - id: a\n    severity: low\n    when: true\n    weight: .nan\n", []string{`f.yaml:5: weight: want a number from 0 to 1`}},
		{"hostile", "rules:\n  - id: a\n    severity: low\n    when: customer.attributes.all(a, customer.attributes.all(b, a != b))\n",
			[]string{`f.yaml:4: rule "a": when: too expensive: worst-case cost 442755 exceeds the limit of 10000`}},
		{"hostile metrics", "rules:\n  - id: a\n    severity: low\n    when: true\n    reasons: usage.metrics.map(a, usage.metrics.map(b, usage.metrics.map(c, a + b + c))).map(l, l[0][0])\n",
			[]string{`f.yaml:5: rule "a": reasons: too expensive`}},
		{"too long", long, []string{`f.yaml:4: rule "a": when: expression code point size exceeds limit`}},
		{"every error", "rules:\n  - id: a\n    severity: bad\n    when: true\n  - id: b\n    severity: low\n    when: nope\n  - id: c\n    severity: low\n    when: 1\n",
			[]string{`f.yaml:2: rule "a": severity "bad"`, `f.yaml:7: rule "b": when: undeclared reference to 'nope'`, `f.yaml:10: rule "c": when: want an expression of type bool`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load("f.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("loaded %d rules, want an error", len(s.Rules))
			}
			lines := strings.Split(err.Error(), "\n")
			for _, l := range lines {
				if !strings.HasPrefix(l, "f.yaml:") {
					t.Errorf("error line %q lacks the file name", l)
				}
			}
		want:
			for _, w := range tt.want {
				for _, l := range lines {
					if strings.HasPrefix(l, w) {
						continue want
					}
				}
				t.Errorf("error %q has no line starting %q", err, w)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	s, err := Load("f.yaml", []byte(`
rules:
  - id: quiet-vip
    description: A VIP went quiet.
    severity: critical
    when: customer.tier == "vip"
    absent:
      events: [purchase, usage]
      for: 36h
      since: customer.signed_up_at
    reasons: '["quiet"]'
  - id: weighted
    severity: low
    weight: 0.2
    instant: true
    when: tickets.open > 0
  - id: computed
    severity: info
    absent: {events: [feedback], for: 'days(3)'}
`))
	if err != nil {
		t.Fatal(err)
	}
	q, w, c := s.Get("quiet-vip"), s.Get("weighted"), s.Get("computed")
	if q == nil || w == nil || c == nil || s.Get("nope") != nil || len(s.Rules) != 3 || s.Rules[1] != w {
		t.Fatalf("rules %v", s.Rules)
	}
	if q.Description != "A VIP went quiet." || q.Severity != "critical" || q.Weight != 0.60 || q.Instant ||
		q.Absent == nil || q.Absent.For != 36*time.Hour || strings.Join(q.Absent.Events, ",") != "purchase,usage" {
		t.Errorf("quiet-vip: %+v %+v", q, q.Absent)
	}
	if w.Weight != 0.2 || !w.Instant || w.Absent != nil {
		t.Errorf("weighted: %+v", w)
	}
	if c.Weight != 0 || c.Absent == nil || c.Absent.For != 0 {
		t.Errorf("computed: %+v %+v", c, c.Absent)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(BuiltinYAML())
	f.Add([]byte("rules:\n  - id: a\n    severity: low\n    when: tickets.open > 2\n"))
	f.Add([]byte("rules:\n  - id: a\n    severity: low\n    absent: {events: [usage], for: 'days(3)'}\n"))
	f.Add([]byte("rules:\n  - id: a\n    severity: high\n    when: |\n      customer.attributes.exists(k, k == 'plan')\n    absent:\n      events: [purchase, usage]\n      for: 36h\n      since: customer.signed_up_at\n    reasons: '[customer.attributes[\"plan\"]]'\n    weight: 0.5\n"))
	f.Add([]byte("rules:\n  - id: a\n    severity: low\n    when: customer.attributes.all(a, customer.attributes.all(b, a != b))\n"))
	f.Add([]byte("rules:\n  - id: a\n    severity: info\n    instant: true\n    when: is_milestone(purchases.count) && days_since(last_seen['purchase']) < 1\n"))
	f.Add([]byte("rules: [{id: a, severity: low, when: 'scale(days(1), 1e300) > duration(\"1s\")'}]"))
	views := []*View{typicalView(), {}, oversizedView()} // read-only
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Load("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(s.Rules) == 0 {
			t.Fatal("loaded an empty rule set")
		}
		// Evaluation must not panic; errors (an overflow, a missing map
		// key) are fine.
		for _, v := range views {
			for _, r := range s.Rules {
				if res, err := r.Evaluate(v); err == nil && res.Holds {
					_, _ = r.Reasons(v)
				}
			}
		}
	})
}
