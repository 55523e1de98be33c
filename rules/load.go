package rules

import (
	_ "embed"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"
)

//go:embed builtin.yaml
var builtinYAML []byte

var builtin = sync.OnceValue(func() *Set {
	s, err := Load("builtin.yaml", builtinYAML)
	if err != nil {
		panic("built-in rules: " + err.Error())
	}
	return s
})

// Builtin returns the built-in pack of contract §3.
func Builtin() *Set { return builtin() }

// BuiltinYAML returns the source of the built-in pack.
func BuiltinYAML() []byte { return slices.Clone(builtinYAML) }

var (
	envOnce     = sync.OnceValues(newEnv)
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	daysPattern = regexp.MustCompile(`^([0-9]+)d$`)
	maxFor      = 36500 * 24 * time.Hour // longest absent.for literal: 100 years

	reflectStrings = reflect.TypeFor[[]string]()
)

// loader collects errors with the file name and YAML line.
type loader struct {
	name string
	env  *cel.Env
	errs []error
	// vars and timed collect, for the rule being loaded, the view variables
	// its conditions read and those whose time-dependent part they read
	// (reasons do not count: they do not decide).
	vars, timed Vars
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s:%d: %s", l.name, n.Line, fmt.Sprintf(format, args...)))
}

// Load parses and compiles a rule file. Every problem found is reported,
// each prefixed with name:line.
func Load(name string, data []byte) (*Set, error) {
	env, err := envOnce()
	if err != nil {
		return nil, fmt.Errorf("rules environment: %w", err)
	}
	l := &loader{name: name, env: env}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(name, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: %w", name, errNoRules)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.errorf(root, "want a mapping with a rules: list")
		return nil, errors.Join(l.errs...)
	}
	set := &Set{byID: map[string]*Rule{}}
	var list *yaml.Node
	l.fields(root, map[string]func(*yaml.Node){"rules": func(n *yaml.Node) { list = n }})
	switch {
	case list == nil:
		l.errorf(root, "missing rules: list")
	case list.Kind != yaml.SequenceNode:
		l.errorf(list, "rules: want a list")
	case len(list.Content) == 0:
		l.errorf(list, "rules: %v", errNoRules)
	default:
		for _, n := range list.Content {
			if r := l.rule(n); r != nil {
				if set.byID[r.ID] != nil {
					l.errorf(n, "rule %q: duplicate id", r.ID)
					continue
				}
				set.byID[r.ID] = r
				set.Rules = append(set.Rules, r)
			}
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return set, nil
}

// fields walks a mapping, calling the handler of each key; unknown and
// repeated keys are errors.
func (l *loader) fields(m *yaml.Node, handlers map[string]func(*yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		h, ok := handlers[k.Value]
		switch {
		case !ok:
			known := make([]string, 0, len(handlers))
			for name := range handlers {
				known = append(known, name)
			}
			slices.Sort(known)
			l.errorf(k, "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
		case seen[k.Value]:
			l.errorf(k, "key %q repeated", k.Value)
		default:
			seen[k.Value] = true
			h(v)
		}
	}
}

func (l *loader) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, "%s: want a single value", what)
		return "", false
	}
	return n.Value, true
}

func (l *loader) rule(n *yaml.Node) *Rule {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "rule: want a mapping with id, severity, when…")
		return nil
	}
	before := len(l.errs)
	l.vars, l.timed = 0, 0
	r := &Rule{Weight: -1}
	var whenN, reasonsN, absentN *yaml.Node
	l.fields(n, map[string]func(*yaml.Node){
		"id":          func(v *yaml.Node) { r.ID, _ = l.scalar(v, "id") },
		"description": func(v *yaml.Node) { r.Description, _ = l.scalar(v, "description") },
		"severity":    func(v *yaml.Node) { r.Severity, _ = l.scalar(v, "severity") },
		"when":        func(v *yaml.Node) { whenN = v },
		"reasons":     func(v *yaml.Node) { reasonsN = v },
		"absent":      func(v *yaml.Node) { absentN = v },
		"instant": func(v *yaml.Node) {
			if s, ok := l.scalar(v, "instant"); ok {
				if v.Tag != "!!bool" {
					l.errorf(v, "instant: want true or false, got %q", s)
					return
				}
				r.Instant, _ = strconv.ParseBool(s)
			}
		},
		"weight": func(v *yaml.Node) {
			if s, ok := l.scalar(v, "weight"); ok {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil || !(f >= 0 && f <= 1) { // NaN too
					l.errorf(v, "weight: want a number from 0 to 1, got %q", s)
				}
				r.Weight = f
			}
		},
	})
	label := fmt.Sprintf("rule %q", r.ID)
	if !idPattern.MatchString(r.ID) {
		l.errorf(n, "rule: id %q must be 1–63 lower-case letters, digits and dashes", r.ID)
	}
	if !slices.Contains(Severities, r.Severity) {
		l.errorf(n, "%s: severity %q must be one of %s", label, r.Severity, strings.Join(Severities, ", "))
	}
	if r.Weight < 0 {
		r.Weight = defaultWeight[r.Severity]
	}
	if whenN != nil {
		r.when = l.compile(whenN, label+": when", "bool")
	} else if absentN == nil {
		l.errorf(n, "%s: needs a when condition, an absent clause or both", label)
	}
	if absentN != nil {
		r.Absent = l.absence(absentN, label)
	}
	r.reads, r.timed, r.ReadsTime = l.vars, l.timed, l.timed != 0
	if reasonsN != nil {
		r.reasons = l.compile(reasonsN, label+": reasons", "list(string)")
	}
	if r.Instant && r.Absent != nil {
		l.errorf(n, "%s: an instant rule cannot have an absence clause", label)
	}
	if len(l.errs) > before {
		return nil
	}
	return r
}

func (l *loader) absence(n *yaml.Node, label string) *Absence {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "%s: absent: want a mapping with events and for", label)
		return nil
	}
	a := &Absence{}
	var forN *yaml.Node
	l.fields(n, map[string]func(*yaml.Node){
		"events": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				l.errorf(v, "%s: absent.events: want a non-empty list of event types", label)
				return
			}
			for _, e := range v.Content {
				if !slices.Contains(EventTypes, e.Value) {
					l.errorf(e, "%s: absent.events: unknown event type %q (want %s)", label, e.Value, strings.Join(EventTypes, ", "))
				}
				a.Events = append(a.Events, e.Value)
			}
		},
		"for":   func(v *yaml.Node) { forN = v },
		"since": func(v *yaml.Node) { a.since = l.compile(v, label+": absent.since", "timestamp") },
	})
	if a.Events == nil {
		l.errorf(n, "%s: absent: missing events", label)
	}
	if forN == nil {
		l.errorf(n, "%s: absent: missing for", label)
		return a
	}
	s, ok := l.scalar(forN, label+": absent.for")
	if !ok {
		return a
	}
	if m := daysPattern.FindStringSubmatch(s); m != nil {
		days, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || days > int64(maxFor/(24*time.Hour)) {
			l.errorf(forN, "%s: absent.for: %s is longer than %d days", label, s, maxFor/(24*time.Hour))
			return a
		}
		a.For = time.Duration(days) * 24 * time.Hour
	} else if d, err := time.ParseDuration(s); err == nil {
		a.For = d
	} else {
		a.forP = l.compile(forN, label+": absent.for", "duration")
		return a
	}
	switch {
	case a.For <= 0:
		l.errorf(forN, "%s: absent.for must be positive", label)
	case a.For > maxFor:
		l.errorf(forN, "%s: absent.for: %s is longer than %d days", label, s, maxFor/(24*time.Hour))
	}
	return a
}

var outputTypes = map[string]*cel.Type{
	"bool": cel.BoolType, "timestamp": cel.TimestampType, "duration": cel.DurationType,
	"list(string)": cel.ListType(cel.StringType),
}

func typeName(t *cel.Type) string {
	for name, ot := range outputTypes {
		if t.IsExactType(ot) {
			return name
		}
	}
	return t.String()
}

// compile compiles and type- and cost-checks one expression.
func (l *loader) compile(n *yaml.Node, what, want string) *program {
	src, ok := l.scalar(n, what)
	if !ok {
		return nil
	}
	ast, iss := l.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			l.errs = append(l.errs, fmt.Errorf("%s:%d: %s: %s (column %d of the expression)",
				l.name, exprLine(n, e.Location.Line()), what, e.Message, e.Location.Column()+1))
		}
		return nil
	}
	if got := ast.OutputType(); !got.IsExactType(outputTypes[want]) {
		l.errorf(n, "%s: want an expression of type %s, got %s", what, want, typeName(got))
		return nil
	}
	if !strings.HasSuffix(what, ": reasons") {
		vars, timed := reads(ast)
		l.vars |= vars
		l.timed |= timed
	}
	if op := nestedComparison(ast); op != "" {
		l.errorf(n, "%s: too expensive: %s compares lists or maps that hold lists or maps (element by element, at any depth); compare their elements instead", what, strings.Trim(op, "_@"))
		return nil
	}
	est, err := l.env.EstimateCost(ast, estimator{})
	if err != nil {
		l.errorf(n, "%s: cost: %v", what, err)
		return nil
	}
	if est.Max > MaxCost {
		l.errorf(n, "%s: too expensive: worst-case cost %d exceeds the limit of %d", what, est.Max, MaxCost)
		return nil
	}
	prg, err := newProgram(l.env, ast)
	if err != nil {
		l.errorf(n, "%s: %v", what, err)
		return nil
	}
	return prg
}
