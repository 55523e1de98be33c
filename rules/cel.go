package rules

import (
	"math"
	"reflect"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"cel.dev/cel-go/parser"
)

// newEnv declares the view and the helper functions:
//
//	days(int) duration                       n × 24h; an error past ±292 years
//	days_between(timestamp, timestamp) int   whole days from the first to the
//	                                         second, truncated toward zero
//	days_since(timestamp) int                days_between(t, now): a macro, so
//	                                         it reads the evaluation's now
//	scale(duration, double) duration         d × f, truncated to the
//	                                         nanosecond; an error on overflow
//	max(duration, duration) duration         the longer of the two
//	is_milestone(int) bool                   n is 10·{1, 2.5, 5}·10^k: 10, 25,
//	                                         50, 100, 250, 500, 1000, …
//
// A zero time of the view (purchases.last before any purchase, say)
// reaches CEL as the Unix epoch, 1970-01-01T00:00:00Z, and has() of it is
// false; days_since of it counts the days since 1970. Rules test
// purchases.count or customer.has_signup before wording such a value.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Customer](), reflect.TypeFor[Purchases](), reflect.TypeFor[Tickets](),
			reflect.TypeFor[Usage](), reflect.TypeFor[MetricUsage](), reflect.TypeFor[Feedback](), ext.ParseStructTags(true)),
		inPlace,
		cel.Variable("now", cel.TimestampType),
		cel.Variable("customer", cel.ObjectType("rules.Customer")),
		cel.Variable("purchases", cel.ObjectType("rules.Purchases")),
		cel.Variable("tickets", cel.ObjectType("rules.Tickets")),
		cel.Variable("usage", cel.ObjectType("rules.Usage")),
		cel.Variable("feedback", cel.ObjectType("rules.Feedback")),
		cel.Variable("last_seen", cel.MapType(cel.StringType, cel.TimestampType)),
		cel.ParserExpressionSizeLimit(maxExprLength),
		cel.Macros(cel.GlobalMacro("days_since", 1, func(eh parser.ExprHelper, _ ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
			return eh.NewCall("days_between", args[0], eh.NewIdent("now")), nil
		})),
		cel.Function("days", cel.Overload("days_int", []*cel.Type{cel.IntType}, cel.DurationType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				n := int64(v.(types.Int))
				if n > math.MaxInt64/int64(24*time.Hour) || n < math.MinInt64/int64(24*time.Hour) {
					return types.NewErr("days(%d) overflows a duration", n)
				}
				return types.Duration{Duration: time.Duration(n) * 24 * time.Hour}
			}))),
		cel.Function("days_between", cel.Overload("days_between_timestamp_timestamp",
			[]*cel.Type{cel.TimestampType, cel.TimestampType}, cel.IntType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				from, to := a.(types.Timestamp).Time, b.(types.Timestamp).Time
				return types.Int(int64(to.Sub(from) / (24 * time.Hour)))
			}))),
		cel.Function("scale", cel.Overload("scale_duration_double", []*cel.Type{cel.DurationType, cel.DoubleType}, cel.DurationType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				f := float64(a.(types.Duration).Duration) * float64(b.(types.Double))
				if math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
					return types.NewErr("scale: duration overflow")
				}
				return types.Duration{Duration: time.Duration(f)}
			}))),
		cel.Function("max", cel.Overload("max_duration_duration", []*cel.Type{cel.DurationType, cel.DurationType}, cel.DurationType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				if a.(types.Duration).Duration >= b.(types.Duration).Duration {
					return a
				}
				return b
			}))),
		cel.Function("is_milestone", cel.Overload("is_milestone_int", []*cel.Type{cel.IntType}, cel.BoolType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Bool(IsMilestone(int64(v.(types.Int)))) }))),
	)
}

// IsMilestone reports whether n is in 10, 25, 50, 100, 250, 500, 1000, …
func IsMilestone(n int64) bool {
	for base := int64(10); base > 0 && base <= n; base *= 10 {
		if n == base || n*2 == base*5 || n == base*5 {
			return true
		}
	}
	return false
}

// unset reports whether a timestamp from CEL stands for a zero time of the
// view, which CEL shows as the Unix epoch.
func unset(t time.Time) bool { return t.IsZero() || t.Equal(epoch) }

var epoch = time.Unix(0, 0)

// noneSeen stands for a nil View.LastSeen; expressions cannot modify it.
var noneSeen = map[string]time.Time{}

// activation resolves the variables of one view without allocating: the
// parts as pointers into the view, now in place (see inPlace).
type activation struct{ v *View }

func (a activation) ResolveName(name string) (any, bool) {
	switch name {
	case "now":
		return nowValue(a.v), true
	case "customer":
		return &a.v.Customer, true
	case "purchases":
		return &a.v.Purchases, true
	case "tickets":
		return &a.v.Tickets, true
	case "usage":
		return &a.v.Usage, true
	case "feedback":
		return &a.v.Feedback, true
	case "last_seen":
		if a.v.LastSeen == nil {
			return noneSeen, true
		}
		return a.v.LastSeen, true
	}
	return nil, false
}

func (a activation) Parent() interpreter.Activation { return nil }
