package rules

import (
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/interpreter"
)

// byValue resolves the view's parts to copies, which CEL reads with
// cel-go's own field getters rather than in place, and now to a time.
type byValue struct{ v *View }

func (a byValue) ResolveName(name string) (any, bool) {
	if name == "now" {
		return a.v.Now, true
	}
	x, ok := activation(a).ResolveName(name)
	if p := reflect.ValueOf(x); p.Kind() == reflect.Pointer {
		return p.Elem().Interface(), ok
	}
	return x, ok
}

func (byValue) Parent() interpreter.Activation { return nil }

// TestInPlaceFields reads every field of the view, and now, in place and
// through cel-go's getters, on typical, empty, zero and extreme views: the
// values are the same, and reading a field other than a map costs no
// allocation.
func TestInPlaceFields(t *testing.T) {
	env, err := envOnce()
	if err != nil {
		t.Fatal(err)
	}
	exprs := []string{"now"}
	for name, part := range map[string]any{"customer": Customer{}, "purchases": Purchases{},
		"tickets": Tickets{}, "usage": Usage{}, "feedback": Feedback{}} {
		typ := reflect.TypeOf(part)
		for i := range typ.NumField() {
			field, _, _ := strings.Cut(typ.Field(i).Tag.Get("cel"), ",")
			exprs = append(exprs, name+"."+field)
		}
	}
	for _, expr := range exprs {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", expr, iss.Err())
		}
		p, err := newProgram(env, ast)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range views()[:4] {
			got, _, err := p.fast.Eval(activation{v})
			if err != nil {
				t.Fatalf("%s on view %d: %v", expr, i, err)
			}
			want, _, err := p.fast.Eval(byValue{v})
			if err != nil {
				t.Fatalf("%s on view %d by value: %v", expr, i, err)
			}
			if got.Type() != want.Type() || !reflect.DeepEqual(got.Value(), want.Value()) {
				t.Errorf("%s on view %d: %v (%T), cel-go reads %v (%T)", expr, i, got, got, want, want)
			}
			if _, isMap := got.Value().(map[string]string); isMap || strings.HasSuffix(expr, ".metrics") {
				continue
			}
			if n := testing.AllocsPerRun(10, func() { _, _, _ = p.fast.Eval(activation{v}) }); n != 0 {
				t.Errorf("%s on view %d: %v allocations", expr, i, n)
			}
		}
	}
}
