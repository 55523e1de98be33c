package rules

import (
	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
)

// windowed lists, per view variable, the fields whose value changes when
// time passes a window edge without any event; nil means every field.
var windowed = map[string]map[string]bool{
	"purchases": {"spend_30d": true, "spend_90d": true, "spend_365d": true},
	"tickets":   {"opened_7d": true, "opened_30d": true},
	"usage":     {"last_7d": true, "prior_28d": true, "weekly_avg_28d": true, "metrics": true},
	"customer":  {"segment": true},
	"now":       nil,
}

// Vars is a set of the view's top-level variables.
type Vars uint8

// The view's variables.
const (
	Now Vars = 1 << iota
	CustomerVar
	PurchasesVar
	TicketsVar
	UsageVar
	FeedbackVar
	LastSeenVar

	// AllVars is every variable of the view.
	AllVars = Now | CustomerVar | PurchasesVar | TicketsVar | UsageVar | FeedbackVar | LastSeenVar
)

var variables = map[string]Vars{"now": Now, "customer": CustomerVar, "purchases": PurchasesVar,
	"tickets": TicketsVar, "usage": UsageVar, "feedback": FeedbackVar, "last_seen": LastSeenVar}

// reads returns the view variables an expression reads and, of those, the
// ones whose time-dependent part it reads: now itself, a trailing-window
// field, or a whole windowed variable (e.g. in a comprehension).
func reads(a *cel.Ast) (vars, timed Vars) {
	selected := map[int64]bool{} // ident ids used as the operand of a field selection
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			s := e.AsSelect()
			op := s.Operand()
			if op.Kind() != celast.IdentKind {
				return
			}
			selected[op.ID()] = true
			if fields, ok := windowed[op.AsIdent()]; ok && (fields == nil || fields[s.FieldName()]) {
				timed |= variables[op.AsIdent()]
			}
		case celast.IdentKind:
			name := e.AsIdent()
			vars |= variables[name]
			if _, ok := windowed[name]; ok && !selected[e.ID()] {
				timed |= variables[name]
			}
		}
	}))
	return vars, timed
}
