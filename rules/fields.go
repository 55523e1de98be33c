package rules

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// inPlace is an environment option, to follow ext.NativeTypes, that reads
// the fields of the view's parts in place.
//
// cel-go's native types read a field (customer.tier, usage.last_7d, …) by
// copying its value into an interface: a heap allocation for each
// timestamp, double, duration, string and most integers read, several per
// evaluation. The view does not change while a rule is evaluated on it, and
// Evaluate and Reasons copy what they keep out of CEL's values before they
// return, so a field can instead be handed to CEL as a value that refers to
// the field itself, the way cel-go's native types hand out nested structs.
// inPlace does so for the fields of those kinds; every other read
// (booleans, maps, structs that CEL built itself) goes to cel-go's getters
// as before. The values are the same either way.
func inPlace(env *cel.Env) (*cel.Env, error) {
	reg, ok := env.CELTypeProvider().(*types.Registry)
	if !ok {
		return nil, fmt.Errorf("rules: type provider %T is not a registry", env.CELTypeProvider())
	}
	p := &inPlaceProvider{Registry: reg, getters: map[fieldKey]ref.FieldGetter{}}
	addFields[Customer](p)
	addFields[Purchases](p)
	addFields[Tickets](p)
	addFields[Usage](p)
	addFields[Feedback](p)
	return cel.CustomTypeProvider(p)(env)
}

// inPlaceProvider is cel-go's registry with the field getters of the
// view's parts replaced.
type inPlaceProvider struct {
	*types.Registry
	getters map[fieldKey]ref.FieldGetter
}

type fieldKey struct{ typ, field string }

// FindStructFieldType is the registry's, with the getter replaced where
// there is one in place.
func (p *inPlaceProvider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	ft, ok := p.Registry.FindStructFieldType(structType, fieldName)
	if get := p.getters[fieldKey{structType, fieldName}]; ok && get != nil {
		in := *ft
		in.GetFrom = get
		ft = &in
	}
	return ft, ok
}

// addFields adds the in-place getters of the fields of T: each reads a
// *T (what activation resolves the view's variables to) in place and
// leaves anything else to cel-go's getter.
func addFields[T any](p *inPlaceProvider) {
	t := reflect.TypeFor[T]()
	typeName := "rules." + t.Name()
	for i := range t.NumField() {
		f := t.Field(i)
		typ := celTypeOf(f.Type)
		name, _, _ := strings.Cut(f.Tag.Get("cel"), ",")
		native, found := p.Registry.FindStructFieldType(typeName, name)
		if typ == nil || !found {
			continue
		}
		get, offset, isTime := native.GetFrom, f.Offset, f.Type == timeType
		p.getters[fieldKey{typeName, name}] = func(obj any) (any, error) {
			s, ok := obj.(*T)
			if !ok || s == nil {
				return get(obj)
			}
			at := unsafe.Add(unsafe.Pointer(s), offset)
			if isTime && (*time.Time)(at).IsZero() {
				return epochValue, nil // as cel-go shows a zero time
			}
			return valueAt(typ, at), nil
		}
	}
}

// celValues are the CEL values that fields of the underlying Go types
// become: types.Double is a float64, types.Timestamp a struct of one
// time.Time, and so on.
var celValues = []any{types.Double(0), types.Int(0), types.String(""), types.Duration{}, types.Timestamp{}}

// celTypeOf returns the runtime type of the CEL value that a value of Go
// type t becomes, laid out as t is, or nil: a CEL value that is a float64,
// int64 or string for those predeclared types, one that is a struct of
// just a t for t.
func celTypeOf(t reflect.Type) unsafe.Pointer {
	for _, v := range celValues {
		c := reflect.TypeOf(v)
		if c.Kind() == t.Kind() && c.Kind() != reflect.Struct && t.PkgPath() == "" ||
			c.Kind() == reflect.Struct && c.NumField() == 1 && c.Field(0).Type == t && c.Size() == t.Size() {
			return typeOf(v)
		}
	}
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// epochValue is how cel-go's native types show a zero time.
var epochValue any = types.Timestamp{Time: time.Unix(0, 0)}

// eface is the layout of an interface value with no methods (any): the
// runtime type of the value and a pointer to it.
type eface struct{ typ, data unsafe.Pointer }

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// valueAt returns the interface value of runtime type typ whose value is
// the memory at data, without copying it.
func valueAt(typ, data unsafe.Pointer) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// nowValue is now of the view, in place.
func nowValue(v *View) any { return valueAt(timestampType, unsafe.Pointer(&v.Now)) }

var timestampType = typeOf(types.Timestamp{})
