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

// readsTime reports whether an expression can change value when only time
// moves: it names now, or reads a trailing-window field (or a whole
// windowed variable, e.g. in a comprehension).
func readsTime(a *cel.Ast) bool {
	found := false
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
				found = true
			}
		case celast.IdentKind:
			if selected[e.ID()] {
				return
			}
			if _, ok := windowed[e.AsIdent()]; ok {
				found = true
			}
		}
	}))
	return found
}
