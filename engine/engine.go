// Package engine moves one customer's state forward in event time: it
// applies the customer's pending events and fires the timers (absence
// deadlines, window edges) in time order, evaluates the rules at each of
// those instants and turns rule transitions into alerts. It is pure: the
// processor calls it with the watermark as the target time, and
// `churnwatch rules test` calls it offline with the same results.
package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
)

// Engine evaluates one rule set. It is safe for concurrent use on
// different customers.
type Engine struct {
	rules   *rules.Set
	segment func(spend365 float64) string
}

// New returns an engine for set. segment maps trailing-365-day spend to a
// segment (A, B, C); nil leaves the segment empty.
func New(set *rules.Set, segment func(spend365 float64) string) *Engine {
	return &Engine{rules: set, segment: segment}
}

// Rules returns the rule set.
func (e *Engine) Rules() *rules.Set { return e.rules }

// Advance brings c to event time to. Pending events at or before to are
// applied in event order, and at every instant where an event was applied
// or a timer was due the rules are evaluated; timers fire only after every
// event at or before their time has been applied. Each transition is passed
// to emit in order. Events older than c.AsOf (late) are applied at c.AsOf.
// A rule that fails to evaluate keeps its previous result; the errors are
// returned joined, after the state has been advanced.
func (e *Engine) Advance(c *state.Customer, to time.Time, emit func(alerts.Alert)) error {
	var errs []error
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.stale, sc.staleEdges = rules.AllVars, rules.AllVars
	pending := c.Pending
	for {
		due, edges := e.nextTimer(c, sc)
		hasEvent := len(c.Pending) > 0 && !c.Pending[0].OccurredAt.After(to)
		var st step
		switch {
		case hasEvent && (due.IsZero() || !c.Pending[0].OccurredAt.After(due)):
			at := c.Pending[0].OccurredAt
			if at.After(c.AsOf) {
				c.AsOf = at
			}
			// Apply every event of this instant before evaluating it.
			n := 0
			deleted := false
			firstSeen := c.FirstSeen
			st = step{kind: eventStep, changed: rules.LastSeenVar, types: sc.types[:0]}
			for n < len(c.Pending) && !c.Pending[n].OccurredAt.After(c.AsOf) {
				ev := &c.Pending[n]
				c.Apply(ev)
				deleted = deleted || (ev.Type == event.Customer && ev.Deleted)
				st.types = append(st.types, ev.Type.String())
				st.changed |= variable[ev.Type]
				n++
			}
			st.firstSeen = !c.FirstSeen.Equal(firstSeen)
			st.windows = edges.At(c.AsOf)
			sc.types = st.types
			sc.staleEdges |= st.changed | st.windows
			if deleted {
				st.kind = fullStep
			}
			c.Pending = c.Pending[n:]
			if deleted {
				e.resolveAll(c, emit)
				sc.stale, sc.staleEdges = rules.AllVars, rules.AllVars
			}
		case !due.IsZero() && !due.After(to):
			st = edgeStepAt(c, due, edges)
			c.AsOf = due
			sc.staleEdges |= edges.At(due)
		default:
			if to.After(c.AsOf) {
				c.AsOf = to
			}
			c.Prune()
			c.Pending = keepPending(pending, c.Pending)
			return errors.Join(errs...)
		}
		if !c.Deleted {
			errs = append(errs, e.evaluate(c, sc, st, emit)...)
		}
	}
}

// maxKeptPending is the most events an array of pending events may hold
// for it to stay with a customer that has none pending left.
const maxKeptPending = 4

// keepPending moves rest, the events of pending still to apply, to the
// front of pending's array and forgets the events applied, so that the
// customer's next events are received into the same array. A large array
// is let go once nothing is pending.
func keepPending(pending, rest []event.Event) []event.Event {
	if len(rest) == 0 && cap(pending) > maxKeptPending {
		return nil
	}
	kept := append(pending[:0], rest...)
	clear(pending[len(kept):])
	return kept
}

// NextDue returns when c next needs the engine: its earliest pending event
// or timer, or zero when nothing is scheduled.
func (e *Engine) NextDue(c *state.Customer) time.Time {
	due, _ := e.nextTimer(c, nil)
	if len(c.Pending) > 0 && (due.IsZero() || c.Pending[0].OccurredAt.Before(due)) {
		return c.Pending[0].OccurredAt
	}
	return due
}

// nextTimer returns c's next timer (the earliest window edge or deadline)
// and the window edges it was chosen from. With an Advance's scratch, the
// edges are those of its step before, found again only where stale.
func (e *Engine) nextTimer(c *state.Customer, sc *scratch) (time.Time, state.Edges) {
	if c.Deleted {
		return time.Time{}, state.Edges{}
	}
	var edges state.Edges
	if sc == nil {
		edges = c.NextEdges()
	} else {
		c.UpdateEdges(&sc.edges, sc.staleEdges)
		sc.staleEdges, edges = 0, sc.edges
		if checkEdges != nil {
			checkEdges(c, edges)
		}
	}
	due := edges.Next()
	if c.Deadline.After(c.AsOf) && (due.IsZero() || c.Deadline.Before(due)) {
		due = c.Deadline
	}
	return due, edges
}

// step says why the rules are evaluated at an instant, so that rules whose
// inputs did not change keep their results.
type step struct {
	kind      int
	types     []string   // eventStep: the types of the events applied
	changed   rules.Vars // eventStep: the view variables they changed; edgeStep: whose windows moved
	firstSeen bool       // eventStep: the customer's first sighting moved
	windows   rules.Vars // eventStep: the view variables whose windows moved at the same instant
}

// moved returns the parts of the view that may differ from the step
// before: now, and what changed or whose windows moved.
func (st step) moved() rules.Vars {
	switch st.kind {
	case edgeStep:
		return rules.Now | st.changed
	case eventStep:
		v := rules.Now | st.changed | st.windows
		if st.firstSeen {
			v |= rules.CustomerVar
		}
		return v
	}
	return rules.AllVars
}

// affects reports whether r's result can change at the step: rules it
// does not affect hold as before.
func (st step) affects(r *rules.Rule) bool {
	switch st.kind {
	case edgeStep:
		return r.AffectedByTime(st.changed)
	case eventStep:
		return r.Affected(st.types, st.changed, st.firstSeen)
	}
	return true
}

// edgeStepAt describes the timer step of c at due, given c's next window
// edges.
func edgeStepAt(c *state.Customer, due time.Time, e state.Edges) step {
	if due.Equal(c.Deadline) {
		return step{kind: fullStep}
	}
	return step{kind: edgeStep, changed: e.At(due)}
}

const (
	fullStep  = iota // a deadline, or an erasure: every rule
	edgeStep         // a window edge: rules that read time
	eventStep        // events: rules that read what they changed, or time
)

// variable is the view variable each event type changes.
var variable = [...]rules.Vars{event.Purchase: rules.PurchasesVar, event.SupportTicket: rules.TicketsVar,
	event.Usage: rules.UsageVar, event.Customer: rules.CustomerVar, event.Feedback: rules.FeedbackVar}

// scratch is what the evaluations of one Advance work in: the view and
// the lists of results. Advance takes one from scratchPool and puts it
// back, so that its backing arrays and maps serve call after call.
type scratch struct {
	types []string
	view  rules.View
	// stale are the parts of view not filled from the customer as it is
	// now: the view is refilled only where it may differ.
	stale rules.Vars
	// edges are the customer's next window edges, of which those of the
	// kinds in staleEdges (an event of theirs was applied, or AsOf reached
	// them) are to be found again.
	edges      state.Edges
	staleEdges rules.Vars
	results    []rules.Result
	holding    []*rules.Rule
	scored     []rules.Scored
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// checkView, when set (by tests), is called with each view the rules are
// evaluated on.
var checkView func(*state.Customer, *rules.View)

// checkEdges, when set (by tests), is called with the window edges of each
// step of an Advance.
var checkEdges func(*state.Customer, state.Edges)

// evaluations counts rule evaluations (for benchmarks).
var evaluations atomic.Int64

// evaluate runs every rule at c.AsOf and emits the transitions.
//
// Rules whose inputs did not change at this step (see step) are not
// evaluated: they hold as before, and the earliest deadline known stays
// scheduled (at worst it causes one more evaluation). A step that
// evaluates no rule builds no view.
func (e *Engine) evaluate(c *state.Customer, sc *scratch, st step, emit func(alerts.Alert)) []error {
	if !c.Deadline.IsZero() && !c.Deadline.After(c.AsOf) {
		// A deadline falls at this instant (an event or a window edge may
		// share it): every rule's deadline must be recomputed.
		st.kind = fullStep
	}
	v := &sc.view
	sc.stale |= st.moved()
	switch {
	case slices.ContainsFunc(e.rules.Rules, st.affects):
		c.UpdateView(v, sc.stale)
		sc.stale = 0
		if e.segment != nil {
			c.Segment = e.segment(v.Purchases.Spend365)
			v.Customer.Segment = c.Segment
		}
		if checkView != nil {
			checkView(c, v)
		}
	case e.segment != nil:
		// No rule is evaluated (a window edge that no rule reads, say):
		// the view is not needed, only the segment.
		c.Segment = e.segment(c.Spend365())
	}
	var (
		errs     []error
		holding  = sc.holding[:0]
		results  = append(sc.results[:0], make([]rules.Result, len(e.rules.Rules))...)
		deadline time.Time
	)
	defer func() { sc.holding, sc.results = holding, results }()
	if st.kind != fullStep {
		deadline = c.Deadline
	}
	for i, r := range e.rules.Rules {
		if !st.affects(r) {
			res := rules.Result{Holds: activeIndex(c, r.ID) >= 0 && !r.Instant}
			results[i] = res
			if res.Holds {
				holding = append(holding, r)
			}
			continue
		}
		evaluations.Add(1)
		res, err := r.Evaluate(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s for customer %s at %s: %w", r.ID, c.ID, c.AsOf.Format(time.RFC3339), err))
			res = rules.Result{Holds: activeIndex(c, r.ID) >= 0}
		}
		results[i] = res
		if res.Holds {
			holding = append(holding, r)
		}
		if d := res.Deadline; d.After(c.AsOf) && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
	}
	c.Deadline = deadline
	c.Risk = rules.Risk(holding)
	for i, r := range e.rules.Rules {
		res := results[i]
		j := activeIndex(c, r.ID)
		switch {
		case res.Holds && j < 0:
			id := alerts.ID(r.ID, c.ID, c.AsOf)
			c.Active = append(c.Active, state.Active{Rule: r.ID, Since: c.AsOf, AlertID: id})
			reasons, err := r.Reasons(v)
			if err != nil {
				errs = append(errs, err)
			}
			emit(e.alert(c, r, id, alerts.Firing, reasons))
		case !res.Holds && j >= 0:
			a := c.Active[j]
			c.Active = append(c.Active[:j], c.Active[j+1:]...)
			if !r.Instant {
				emit(e.alert(c, r, a.AlertID, alerts.Resolved, nil))
			}
		}
	}
	return errs
}

// Explain returns the reasons of c's risk score: those of the rules
// holding, worded as of c.AsOf, most weighty first. They are a function of
// the state, so a state does not keep them: they are worded when read.
func (e *Engine) Explain(c *state.Customer) ([]string, error) {
	if c.Deleted || len(c.Active) == 0 {
		return nil, nil
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	v := &sc.view
	c.ViewInto(v)
	var (
		holding = sc.scored[:0]
		errs    []error
	)
	defer func() { clear(holding); sc.scored = holding[:0] }()
	for _, r := range e.rules.Rules {
		if activeIndex(c, r.ID) < 0 {
			continue
		}
		reasons, err := r.Reasons(v)
		if err != nil {
			errs = append(errs, err)
		}
		holding = append(holding, rules.Scored{Rule: r, Reasons: reasons})
	}
	_, reasons := rules.Score(holding)
	return reasons, errors.Join(errs...)
}

// resolveAll ends every open episode of an erased customer, carrying no
// customer data.
func (e *Engine) resolveAll(c *state.Customer, emit func(alerts.Alert)) {
	for _, a := range c.Active {
		r := e.rules.Get(a.Rule)
		if r == nil || r.Instant {
			continue
		}
		emit(alerts.Alert{
			AlertID: a.AlertID, Rule: r.ID, Severity: r.Severity, CustomerID: c.ID,
			Status: alerts.Resolved, Time: c.AsOf, Reasons: []string{"customer erased"},
		})
	}
	c.Active = nil
	c.Deadline = time.Time{}
}

func (e *Engine) alert(c *state.Customer, r *rules.Rule, id string, status alerts.Status, reasons []string) alerts.Alert {
	if reasons == nil {
		reasons = []string{}
	}
	a := alerts.Alert{
		AlertID: id, Rule: r.ID, Severity: r.Severity, CustomerID: c.ID, Status: status,
		Time: c.AsOf, RiskScore: c.Risk, Reasons: reasons,
		Customer: alerts.Summary{
			Tier: c.Profile.Tier, Segment: c.Segment, TotalSpend: c.Purchases.Total,
			OpenTickets: int64(len(c.Tickets.Open)),
		},
	}
	if !c.Purchases.Last.IsZero() {
		t := c.Purchases.Last
		a.Customer.LastPurchaseAt = &t
	}
	if c.Feedback.NPS >= 0 {
		n := int64(c.Feedback.NPS)
		a.Customer.NPS = &n
	}
	return a
}

func activeIndex(c *state.Customer, rule string) int {
	for i := range c.Active {
		if c.Active[i].Rule == rule {
			return i
		}
	}
	return -1
}
