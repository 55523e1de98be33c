package rules

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hangGuard bounds one hostile load or evaluation. It only catches hangs
// (an exponential evaluation takes minutes to years); the inputs below
// take milliseconds, but -race on a busy two-core machine stretches them.
const hangGuard = 30 * time.Second

// unpositioned are the yaml.v3 errors that carry no line, which Load
// reports as "name: message".
var unpositioned = []string{
	"no rules",
	"control characters are not allowed",
	"invalid leading UTF-8 octet",
	"incomplete UTF-8 octet sequence",
	"invalid trailing UTF-8 octet",
	"exceeded max depth of",
	"unknown anchor",
	"mapping values are not allowed in this context",
}

// unplaced returns the errors in err (one per errors.Join member) that do
// not start with "name:line: "; with lineless, yaml.v3's errors without a
// line may start with "name: " instead.
func unplaced(name string, err error, lineless bool) []string {
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, m := range j.Unwrap() {
				walk(m)
			}
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)
	pos := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `:[1-9][0-9]*: `)
	var bad []string
next:
	for _, e := range leaves {
		msg := e.Error()
		if pos.MatchString(msg) {
			continue
		}
		if lineless {
			for _, u := range unpositioned {
				if strings.HasPrefix(msg, name+": "+u) {
					continue next
				}
			}
		}
		bad = append(bad, msg)
	}
	return bad
}

// laughs is a billion-laughs document: nine levels of nine aliases.
func laughs(use string) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [%s*l%d]\n", i, i, strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 8), i-1)
	}
	return b.String() + use
}

// hostileYAML are rule files built to hurt a YAML loader; ok marks the two
// that are valid rule files.
var hostileYAML = []struct {
	name, src string
	ok        bool
}{
	{"billion laughs as the list", laughs("rules: *l9\n"), false},
	{"billion laughs as a condition", laughs("rules:\n  - id: a\n    severity: low\n    when: *l9\n"), false},
	{"rules through an alias", "x: &r\n  - id: a\n    severity: low\n    when: true\nrules: *r\n", false},
	{"undefined alias", "rules: *nope\n", false},
	{"merge key", "base: &b {severity: low, when: 'true'}\nrules:\n  - <<: *b\n    id: a\n", false},
	{"deep flow nesting", "rules: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n", false},
	{"deep mapping nesting", "rules: " + strings.Repeat("{a: ", 20000) + "b" + strings.Repeat("}", 20000) + "\n", false},
	{"deep block nesting", func() string {
		var b strings.Builder
		b.WriteString("rules:\n")
		for i := range 3000 {
			b.WriteString(strings.Repeat(" ", i+2) + "-\n")
		}
		return b.String()
	}(), false},
	{"invalid UTF-8", "rules:\n  - id: a\xff\n    severity: low\n    when: true\n", false},
	{"truncated UTF-8", "rules:\n  - id: a\xe2\x82", false},
	{"NUL", "rules:\n  - id: a\x00\n", false},
	{"UTF-16", "\xff\xfer\x00u\x00l\x00e\x00s\x00:\x00", false},
	{"tab indentation", "rules:\n\t- id: a\n", false},
	{"carriage returns", "rules:\r  - id: a\r    severity: low\r", false},
	{"binary tag", "rules:\n  - id: !!binary YQ==\n    severity: low\n    when: true\n", false},
	{"non-scalar key", "rules:\n  - {[a]: b, id: a, severity: low, when: 'true'}\n", false},
	{"50,000 unknown keys", "rules:\n  - id: a\n    severity: low\n    when: true\n" + strings.Repeat("    k: v\n", 50000), false},
	{"1 MiB condition", "rules:\n  - id: a\n    severity: low\n    when: '" + strings.Repeat("a", 1<<20) + "'\n", false},
	{"10,000 rules with one bad", strings.Repeat("  - {id: a, severity: low, when: 'true'}\n", 10000) + "  - 3\n", false},
	{"null document", "~\n", false},
	{"comments only", "# nothing\n", false},
	{"empty rule", "rules:\n  -\n", false},
	{"mapping values", "a: b: c", false},
	{"byte order mark", "\ufeffrules:\n  - id: a\n    severity: low\n    when: true\n", true},
	{"a second document", "rules:\n  - id: a\n    severity: low\n    when: true\n---\nrules: [1, 2]\n", true},
}

// TestLoadHostileYAML: Load neither panics nor hangs on hostile YAML, and
// says where each problem is (file:line, or file: for the few yaml.v3
// errors without a line).
func TestLoadHostileYAML(t *testing.T) {
	for _, tt := range hostileYAML {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := Load("h.yaml", []byte(tt.src))
			if d := time.Since(start); d > hangGuard {
				t.Errorf("Load took %s", d)
			}
			if tt.ok {
				if err != nil || len(s.Rules) != 1 {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded %d rules, want an error", len(s.Rules))
			}
			if bad := unplaced("h.yaml", err, true); len(bad) > 0 {
				t.Errorf("errors without file:line: %.300q", bad)
			}
		})
	}
}

// views are what the fuzzed and hostile expressions are evaluated on:
// typical, empty, zero, extreme and oversized (20,000 attributes; 20,000
// metrics and last_seen entries: past the static estimate's assumptions,
// so evaluated under the run-time cost limit).
func views() []*View {
	extreme := typicalView()
	extreme.Now = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	extreme.Customer.ID = strings.Repeat("{é}: ", 40)
	extreme.Customer.FirstSeen = time.Unix(0, 0).UTC()
	extreme.Customer.SignedUpAt = time.Unix(0, 0).UTC()
	extreme.Customer.Attributes = map[string]string{"": strings.Repeat("\u00ff", 1024), "\x7f": ""}
	extreme.Purchases = Purchases{Count: math.MaxInt64, Total: math.MaxFloat64, First: time.Unix(0, 0).UTC(),
		Last: extreme.Now, Spend30: math.Inf(1), Spend90: math.SmallestNonzeroFloat64, Spend365: -0.0,
		Interval: math.MaxInt64}
	extreme.Tickets = Tickets{Open: math.MinInt64, Opened7: math.MaxInt64, Opened30: -1, Last: extreme.Now, LatestCSAT: 5}
	extreme.Usage.Last7, extreme.Usage.WeeklyAvg28 = 1e308, math.Inf(1)
	extreme.Feedback = Feedback{NPS: 10, NPSCategory: "promoter", CSAT: math.MaxInt64, CES: math.MinInt64}
	extreme.LastSeen = map[string]time.Time{"purchase": extreme.Now, "usage": time.Unix(0, 0).UTC(), "": {}}

	metrics := typicalView()
	for i := range 20000 {
		metrics.Usage.Metrics["m"+strconv.Itoa(i)] = MetricUsage{Last7: float64(i)}
		metrics.LastSeen["t"+strconv.Itoa(i)] = now
	}
	return []*View{typicalView(), view(), {}, extreme, oversizedView(), metrics}
}

// ruleYAML is a one-rule file with expr as its when (where 0), reasons (1),
// absent.for (2) or absent.since (3) expression. The expression is a
// double-quoted scalar whose escapes (\n, \xff, \u2028, …) YAML reads as Go
// wrote them, so every expression reaches the CEL compiler.
func ruleYAML(expr string, where uint8) string {
	q := strconv.QuoteToASCII(expr)
	head := "rules:\n  - id: fuzz\n    severity: low\n"
	switch where % 4 {
	case 1:
		return head + "    when: true\n    reasons: " + q + "\n"
	case 2:
		return head + "    absent:\n      events: [purchase]\n      for: " + q + "\n"
	case 3:
		return head + "    absent:\n      events: [purchase]\n      for: 30d\n      since: " + q + "\n"
	}
	return head + "    when: " + q + "\n"
}

// evaluateAll evaluates every rule of s, and its reasons, on every view.
func evaluateAll(s *Set, vs []*View) {
	for _, v := range vs {
		for _, r := range s.Rules {
			_, _ = r.Evaluate(v)
			_, _ = r.Reasons(v)
		}
	}
}

// FuzzEvaluate loads a one-rule file around a fuzzed CEL expression and
// evaluates it on typical, empty, extreme and oversized views: nothing
// panics, a load error always says file:line, and no load and evaluation
// takes long (the static cost check or the run-time cost limit stops
// expensive expressions).
func FuzzEvaluate(f *testing.F) {
	for _, s := range []string{
		`customer.tier == "vip"`,
		`purchases.count >= 3 && days_since(purchases.last) > 30`,
		`usage.weekly_avg_28d >= 5.0 && usage.last_7d < 0.5 * usage.weekly_avg_28d`,
		`feedback.nps >= 0 && feedback.nps <= 6`,
		`customer.attributes.exists(k, k == "plan" && customer.attributes[k] == "pro")`,
		`usage.metrics.all(m, usage.metrics[m].last_7d > 0.0)`,
		`has(last_seen.purchase) && last_seen["purchase"] < now - days(7)`,
		`is_milestone(purchases.count) && purchases.last == now`,
		`["a", customer.tier + "b", string(purchases.count)]`,
		`max(scale(purchases.interval, 3.0), days(30))`,
		`customer.signed_up_at + duration("1h")`,
		`scale(days(1), 1e300) > days(1)`,
		`days(106752) > days(1)`,
		`timestamp("9999-12-31T23:59:59Z") + days(1) > now`,
		`customer.attributes["missing"] == ""`,
		`customer.attributes.all(a, customer.attributes.all(b, a != b))`,
		`[1, 2, 3].map(x, [1, 2, 3].map(y, x * y)).size() > 0`,
		`[customer.id].map(s, s + s).map(s, s + s).map(s, s + s)[0].size() > 0`,
		strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300),
		strings.Repeat("!", 1000) + "true",
		"customer.id.matches(\"(a*)*b\")\n&& \"\\u2028\" != \"\"",
	} {
		for where := range uint8(4) {
			f.Add(s, where)
		}
	}
	vs := views()
	f.Fuzz(func(t *testing.T, expr string, where uint8) {
		start := time.Now()
		s, err := Load("fuzz.yaml", []byte(ruleYAML(expr, where)))
		if err != nil {
			if bad := unplaced("fuzz.yaml", err, false); len(bad) > 0 {
				t.Fatalf("errors without file:line: %q", bad)
			}
			return
		}
		if len(s.Rules) != 1 {
			t.Fatalf("%d rules loaded, want 1", len(s.Rules))
		}
		evaluateAll(s, vs)
		// Loose: fuzzing runs several workers, with -race in CI.
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("load and evaluation took %s", d)
		}
	})
}

// share nests k maps that pair a list with itself: [[[1,1],[1,1]], …]. Each
// level reuses the list below, so it is built in k steps, but it has 2^k
// leaves, and comparing two such lists visits every one.
func share(k int) string { return "[1]" + strings.Repeat(".map(a, [a, a])", k) }

// seq is the list literal [0, 1, …, n-1].
func seq(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// attrs and metrics index the oversized views of views().
const attrs, metrics = 4, 5

// hostileExprs are expressions built to be expensive; see
// TestHostileExpressions.
var hostileExprs = []struct {
	name  string
	expr  string
	where uint8
	// load is the start of the load error after the rule's label.
	load string
	// limitOn, without load, is the view whose evaluation the run-time
	// cost limit stops.
	limitOn int
}{
	{name: "deep parentheses", expr: strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300),
		load: "when: expression recursion limit exceeded"},
	{name: "deep list literal", expr: strings.Repeat("[", 300) + "1" + strings.Repeat("]", 300) + ".size() > 0",
		load: "when: expression recursion limit exceeded"},
	{name: "deep calls", expr: strings.Repeat("string(", 300) + "1" + strings.Repeat(")", 300) + ` == ""`,
		load: "when: expression recursion limit exceeded"},
	{name: "long expression", expr: strings.Repeat("1 + ", 2000) + "1 > 0",
		load: "when: expression code point size exceeds limit"},
	{name: "64³ comprehension", expr: seq(64) + ".all(a, " + seq(64) + ".all(b, " + seq(64) + ".all(c, a + b + c >= 0)))",
		load: "when: too expensive"},
	{name: "attributes × attributes", expr: `customer.attributes.all(a, customer.attributes.exists(b, a + b == ""))`,
		load: "when: too expensive"},
	{name: "three maps nested", expr: `[customer.attributes, customer.attributes, customer.attributes].all(m, m.all(k, m.all(j, k != j)))`,
		load: "when: too expensive"},
	{name: "metrics cubed in reasons", expr: `usage.metrics.map(a, usage.metrics.map(b, usage.metrics.map(c, a + b + c))).map(l, l[0][0])`,
		where: 1, load: "reasons: too expensive"},
	{name: "string doubling", expr: "[customer.id]" + strings.Repeat(".map(s, s + s)", 16) + "[0].size() > 0",
		load: "when: too expensive"},
	{name: "string repeat in a comprehension", expr: seq(64) + ".all(i, " + seq(64) + ".all(j, size(customer.id + customer.id + customer.id) > i + j))",
		load: "when: too expensive"},
	{name: "list doubling", expr: "[[1]]" + strings.Repeat(".map(a, a + a)", 24) + ".exists(x, x.exists(y, y == 2))",
		load: "when: too expensive"},
	{name: "cubic filter in absent.for", expr: "days(" + seq(64) + ".filter(a, " + seq(64) + ".exists(b, " + seq(64) + ".exists(c, a == b + c))).size())",
		where: 2, load: "absent.for: too expensive"},
	{name: "attribute scan", expr: `customer.attributes.exists(k, k.startsWith("zz"))`, limitOn: attrs},
	{name: "attribute scan in reasons", expr: `customer.attributes.map(k, k + "!")`, where: 1, limitOn: attrs},
	{name: "metric scan", expr: `usage.metrics.exists(m, usage.metrics[m].last_7d > 1e9)`, limitOn: metrics},
	{name: "last_seen scan in absent.since", expr: `last_seen.exists(k, last_seen[k] > now) ? now : customer.first_seen`,
		where: 3, limitOn: metrics},
	{name: "shared lists compared", expr: share(60) + " == " + share(60), load: "when: too expensive: == compares lists or maps that hold lists"},
	{name: "shared lists searched", expr: share(60) + " in [" + share(60) + "]", load: "when: too expensive: in compares lists or maps that hold lists"},
	{name: "nested maps compared", expr: `{"a": {"b": 1}} != {"a": {"b": 2}}`, load: "when: too expensive: != compares"},
}

// TestHostileExpressions: expensive expressions are rejected when the file
// is loaded (the static worst-case cost, the expression size limit, the
// parser's recursion limit), or, when a view is larger than the static
// estimate assumed, stopped during evaluation by the run-time cost limit.
func TestHostileExpressions(t *testing.T) {
	vs := views()
	for _, tt := range hostileExprs {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := Load("h.yaml", []byte(ruleYAML(tt.expr, tt.where)))
			if d := time.Since(start); d > hangGuard {
				t.Errorf("Load took %s", d)
			}
			if tt.load != "" {
				if err == nil {
					t.Fatal("loaded, want a load error")
				}
				line := [...]int{4, 5, 6, 7}[tt.where] // of the expression in ruleYAML
				if want := fmt.Sprintf(`h.yaml:%d: rule "fuzz": %s`, line, tt.load); !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %.200q, want one starting %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := s.Rules[0]
			eval := func(v *View) error {
				start := time.Now()
				_, err := r.Evaluate(v)
				if tt.where == 1 {
					_, err = r.Reasons(v)
				}
				if d := time.Since(start); d > hangGuard {
					t.Errorf("evaluation took %s", d)
				}
				return err
			}
			if err := eval(vs[0]); err != nil {
				t.Errorf("typical view: %v", err)
			}
			if err := eval(vs[tt.limitOn]); err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
				t.Errorf("oversized view: %v, want the run-time cost limit exceeded", err)
			}
			for _, v := range vs {
				eval(v) //nolint:errcheck // must not panic or hang; errors are fine
			}
		})
	}
}
