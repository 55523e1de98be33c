// Package rules loads churnwatch's rule files (YAML with CEL conditions),
// evaluates a rule over a customer View at one instant of event time, and
// combines the rules that hold into a 0–100 risk score. It holds the
// built-in pack of contract §3. Rules are pure functions of the view: the
// engine decides when to evaluate them, this package only how.
package rules

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"cel.dev/cel-go/common/types"
)

// Severities in increasing order.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// defaultWeight is each severity's contribution to the risk score.
var defaultWeight = map[string]float64{"info": 0, "low": 0.15, "medium": 0.30, "high": 0.45, "critical": 0.60}

// EventTypes are the event types an absence clause may name.
var EventTypes = []string{"purchase", "support_ticket", "usage", "customer", "feedback"}

// Set is a loaded rule file.
type Set struct {
	Rules []*Rule
	byID  map[string]*Rule
}

// Get returns the rule with id, or nil.
func (s *Set) Get(id string) *Rule { return s.byID[id] }

// Rule is one compiled rule.
type Rule struct {
	ID          string
	Description string
	Severity    string
	Instant     bool    // fires on each transition to true, never resolves
	Weight      float64 // contribution to the risk score, 0..1
	Absent      *Absence
	// ReadsTime is set when the rule's result can change as time passes a
	// window edge with no event: its condition or absence clause names now
	// or a trailing-window field. Other rules need no re-evaluation at
	// window edges.
	ReadsTime bool
	reads     Vars // view variables the condition reads
	timed     Vars // … of which it reads time-dependent parts (Now included)

	when    *program // nil: true
	reasons *program // nil: no reasons
}

// Absence is a rule's absence clause: it holds once none of Events has
// occurred for For, measured from the later of the last such event, the
// customer's first sighting and Since.
type Absence struct {
	Events []string
	For    time.Duration // when constant
	forP   *program      // when an expression
	since  *program      // optional
}

// Result of one evaluation.
type Result struct {
	Holds bool
	// Deadline is when the absence clause will start to hold if nothing
	// happens (start + for), when that is after the view's Now.
	Deadline time.Time
}

// Evaluate evaluates r on v at v.Now: r holds when its when condition
// holds (true when absent) and, if it has an absence clause, the absence
// holds too. The absence starts at the latest of the last event of one of
// its types (v.LastSeen), the customer's first sighting and its since
// expression (unless unset); it holds once v.Now >= start + for, and until
// then Result.Deadline is start + for, whatever the when condition says.
// A customer never seen (no first sighting, no event) has no absence.
//
// Evaluate reads v and does not keep it; it is safe for concurrent use.
func (r *Rule) Evaluate(v *View) (Result, error) {
	bounded := withinEstimate(v)
	var res Result
	holds := true
	if r.when != nil {
		val, err := r.when.eval(v, bounded)
		if err != nil {
			return res, fmt.Errorf("when: %w", err)
		}
		holds = val == types.True
	}
	if a := r.Absent; a != nil {
		start := v.Customer.FirstSeen
		for _, t := range a.Events {
			if at := v.LastSeen[t]; at.After(start) {
				start = at
			}
		}
		if a.since != nil {
			val, err := a.since.eval(v, bounded)
			if err != nil {
				return res, fmt.Errorf("absent.since: %w", err)
			}
			if at := val.(types.Timestamp).Time; at.After(start) && !unset(at) {
				start = at
			}
		}
		d := a.For
		if a.forP != nil {
			val, err := a.forP.eval(v, bounded)
			if err != nil {
				return res, fmt.Errorf("absent.for: %w", err)
			}
			d = val.(types.Duration).Duration
		}
		due := start.Add(d)
		switch {
		case start.IsZero():
			holds = false
		case due.After(v.Now):
			holds = false
			res.Deadline = due
		}
	}
	res.Holds = holds
	return res, nil
}

// AffectedByTime reports whether r's result can change at a window edge
// where the trailing windows of the moved variables (purchases, tickets,
// usage, and customer for the segment) changed.
func (r *Rule) AffectedByTime(moved Vars) bool {
	return r.timed&(moved|Now) != 0
}

// Affected reports whether r's result can change when events of types
// (contract names) are applied and nothing else but the listed view
// variables changed (firstSeen: the customer's first sighting moved).
// Rules that read time are always affected.
func (r *Rule) Affected(types []string, changed Vars, firstSeen bool) bool {
	if r.ReadsTime || r.Instant || r.reads&changed != 0 {
		return true
	}
	if a := r.Absent; a != nil {
		if firstSeen {
			return true
		}
		for _, t := range types {
			if slices.Contains(a.Events, t) {
				return true
			}
		}
	}
	return false
}

// Reasons evaluates r's reasons on v; call it when r holds. They are kept
// apart from Evaluate because building strings costs more than deciding,
// and reasons are needed only when an alert fires or a state is shown.
func (r *Rule) Reasons(v *View) ([]string, error) {
	if r.reasons == nil {
		return nil, nil
	}
	val, err := r.reasons.eval(v, withinEstimate(v))
	if err != nil {
		return nil, fmt.Errorf("rule %s: reasons: %w", r.ID, err)
	}
	list, err := val.ConvertToNative(reflectStrings)
	if err != nil {
		return nil, fmt.Errorf("rule %s: reasons: %w", r.ID, err)
	}
	return list.([]string), nil
}

// Scored is a rule that holds, with its reasons.
type Scored struct {
	Rule    *Rule
	Reasons []string
}

// Risk combines the rules that hold into a risk score from 0 to 100:
//
//	round(100 × (1 − Π(1 − weight)))
//
// clamped to 0..100, halves rounded up. Each rule is an independent chance
// of losing the customer, so every signal adds to the risk without the
// total passing 100. A rule's weight is its weight: key, else its
// severity's: info 0, low 0.15, medium 0.30, high 0.45, critical 0.60. One
// high rule scores 45; a high and a medium 62; no rule 0.
func Risk(holding []*Rule) int {
	keep := 1.0
	for _, r := range holding {
		keep *= 1 - r.Weight
	}
	// The epsilon keeps a sum that is exactly a half in decimal (61.5)
	// from rounding down for being 61.49999… in binary.
	return max(0, min(100, int(math.Round(100*(1-keep)+1e-9))))
}

// Score is Risk with reasons: the holding rules' reasons in rule order,
// without repeats, leaving out rules of weight 0 (opportunities such as
// loyalty-milestone, not risks).
func Score(holding []Scored) (int, []string) {
	rs := make([]*Rule, len(holding))
	var reasons []string
	seen := map[string]bool{}
	for i, s := range holding {
		rs[i] = s.Rule
		if s.Rule.Weight == 0 {
			continue
		}
		for _, r := range s.Reasons {
			if !seen[r] {
				seen[r] = true
				reasons = append(reasons, r)
			}
		}
	}
	return Risk(rs), reasons
}

var errNoRules = errors.New("no rules")
