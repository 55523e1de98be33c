package rules

import (
	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Cost limit of one expression, in CEL cost units (about one per operation
// and per element a comprehension visits). It is enforced twice:
//
//   - at load, the statically estimated worst case (cel.Env.EstimateCost)
//     must not exceed MaxCost. The estimate assumes the view's maps
//     (customer.attributes, usage.metrics, last_seen) hold at most 64
//     entries and its strings at most 1 KiB, which input validation (64
//     attributes, values of 1 KiB, ids of 200 characters) and the state (32
//     usage metrics) guarantee. A comprehension nested in another over the
//     attributes is already over the limit.
//   - at evaluation, a view with a map larger than assumed is evaluated by
//     a program that tracks its actual cost and stops past MaxCost
//     (cel.CostLimit). Views within the assumed sizes, all of them in
//     practice, skip that tracking, which would triple the time of an
//     evaluation: the static bound already holds for them.
const (
	MaxCost        = 10000
	maxExprLength  = 4096
	assumedEntries = 64
	assumedString  = 1024
)

// estimator bounds the sizes the static cost check cannot know.
type estimator struct{}

func (estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	switch n.Type().Kind() {
	case types.MapKind, types.ListKind:
		return &cost.SizeEstimate{Min: 0, Max: assumedEntries}
	case types.StringKind, types.BytesKind:
		return &cost.SizeEstimate{Min: 0, Max: assumedString}
	}
	return nil
}

func (estimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}

// program is one compiled expression, as two CEL programs: fast runs
// without cost tracking, limited stops past MaxCost. Both are safe for
// concurrent use.
type program struct {
	fast, limited cel.Program
}

// newProgram plans ast both ways.
func newProgram(env *cel.Env, ast *cel.Ast) (*program, error) {
	fast, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	limited, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(MaxCost))
	if err != nil {
		return nil, err
	}
	return &program{fast: fast, limited: limited}, nil
}

// eval evaluates p on v; bounded says whether v is within the sizes the
// static estimate assumed (see withinEstimate).
func (p *program) eval(v *View, bounded bool) (ref.Val, error) {
	prg := p.fast
	if !bounded {
		prg = p.limited
	}
	val, _, err := prg.Eval(activation{v})
	return val, err
}

// withinEstimate reports whether v's maps are no larger than the static
// cost estimate assumed. Strings are not measured here: their length is
// bounded on input, and a longer string only makes an evaluation
// proportionally slower.
func withinEstimate(v *View) bool {
	return len(v.Customer.Attributes) <= assumedEntries && len(v.Usage.Metrics) <= assumedEntries &&
		len(v.LastSeen) <= assumedEntries
}

// nestedComparison returns the operator of the first equality or `in` test
// in a whose operands are lists or maps holding lists or maps, or "". Such
// a comparison walks every nested element: a list built by repeated
// .map(a, [a, a]) holds 2^n elements while the cost model sees one value
// of at most assumedEntries entries, so neither limit would stop it. A
// churn rule has no use for it.
func nestedComparison(a *cel.Ast) string {
	native := a.NativeRep()
	found := ""
	celast.PreOrderVisit(native.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if found != "" || e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		switch call.FunctionName() {
		case operators.Equals, operators.NotEquals, operators.In, operators.OldIn:
		default:
			return
		}
		for _, arg := range call.Args() {
			if nestedContainer(native.GetType(arg.ID())) {
				found = call.FunctionName()
				return
			}
		}
	}))
	return found
}

// nestedContainer reports a list or map type whose elements (or values)
// are lists, maps or of a type known only at run time.
func nestedContainer(t *types.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case types.ListKind, types.MapKind:
	default:
		return false
	}
	for _, p := range t.Parameters() {
		switch p.Kind() {
		case types.ListKind, types.MapKind, types.DynKind, types.AnyKind:
			return true
		}
	}
	return false
}
