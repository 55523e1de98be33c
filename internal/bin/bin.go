// Package bin is the small append-style binary encoder and bounds-checked
// decoder behind churnwatch's compact formats (internal events, customer
// state, watermark marks). Varints keep small numbers small; every read
// checks its bounds so that corrupt input yields an error, never a panic.
package bin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrCorrupt is returned when input ends early or holds an impossible value.
var ErrCorrupt = errors.New("corrupt binary data")

// Writer appends values to a byte slice.
type Writer struct {
	B    []byte
	Base int64 // Unix µs that TimeRel counts from
}

// Uvarint appends v as an unsigned varint.
func (w *Writer) Uvarint(v uint64) { w.B = binary.AppendUvarint(w.B, v) }

// Varint appends v as a signed (zig-zag) varint.
func (w *Writer) Varint(v int64) { w.B = binary.AppendVarint(w.B, v) }

// Byte appends one byte.
func (w *Writer) Byte(b byte) { w.B = append(w.B, b) }

// Bool appends b as one byte.
func (w *Writer) Bool(b bool) {
	if b {
		w.B = append(w.B, 1)
	} else {
		w.B = append(w.B, 0)
	}
}

// Float appends f; integral values in int32 range take one to five bytes.
func (w *Writer) Float(f float64) {
	if f == math.Trunc(f) && math.Abs(f) < 1<<31 && !(f == 0 && math.Signbit(f)) {
		w.Byte(0)
		w.Varint(int64(f))
		return
	}
	w.Byte(1)
	w.B = binary.LittleEndian.AppendUint64(w.B, math.Float64bits(f))
}

// Uint64 appends v as eight fixed bytes (used for hashes).
func (w *Writer) Uint64(v uint64) { w.B = binary.LittleEndian.AppendUint64(w.B, v) }

// Uint48 appends the low 48 bits of v as six fixed bytes.
func (w *Writer) Uint48(v uint64) {
	w.B = append(w.B, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40))
}

// String appends a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	w.B = append(w.B, s...)
}

// Time appends t as microseconds since the Unix epoch (shifted by one from
// the epoch on, so that 0 can stand for the zero Time).
func (w *Writer) Time(t time.Time) { w.Varint(timeCode(t)) }

func timeCode(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	us := t.UnixMicro()
	if us >= 0 {
		us++
	}
	return us
}

func timeFromCode(c int64) time.Time {
	switch {
	case c == 0:
		return time.Time{}
	case c > 0:
		c--
	}
	return time.UnixMicro(c).UTC()
}

// TimeRel appends t relative to w.Base (Unix µs), then makes t the base
// of the next (the zero Time leaves it): whole seconds from it when t is a
// whole number of seconds from it, else microseconds. A time equal to the
// one before takes one byte, one a few weeks away 4 or 5 instead of 8, and
// the zero Time one. Read it with Reader.TimeRel from the same Base.
func (w *Writer) TimeRel(t time.Time) {
	w.Uvarint(relCode(t, w.Base))
	if !t.IsZero() {
		w.Base = t.UnixMicro()
	}
}

func relCode(t time.Time, base int64) uint64 {
	if t.IsZero() {
		return 0
	}
	d := t.UnixMicro() - base
	flag := uint64(1)
	if d%1e6 == 0 {
		d, flag = d/1e6, 0
	}
	zz := uint64(d<<1) ^ uint64(d>>63)
	return (zz<<1 | flag) + 1
}

// Num appends f compactly: an integer or a whole number of cents below
// 2^50 as a varint, anything else as its 8 bytes. Read it with Reader.Num.
func (w *Writer) Num(f float64) {
	const limit = 1 << 50
	if f != 0 || !math.Signbit(f) { // -0 keeps its sign in 8 bytes
		if i := math.Round(f); i == f && math.Abs(i) < limit {
			w.Varint(int64(i) << 2)
			return
		}
		if c := math.Round(f * 100); c/100 == f && math.Abs(c) < limit {
			w.Varint(int64(c)<<2 | 1)
			return
		}
	}
	w.Varint(2)
	w.Float(f)
}

// Reader consumes values written by Writer. After the first error every
// read returns a zero value and Err reports ErrCorrupt.
type Reader struct {
	B    []byte
	Base int64 // Unix µs that TimeRel counts from
	err  error
}

// TimeRel reads a time written by Writer.TimeRel from the same Base, and
// makes it the base of the next.
func (r *Reader) TimeRel() time.Time {
	c := r.Uvarint()
	if c == 0 {
		return time.Time{}
	}
	c--
	flag, zz := c&1, c>>1
	d := int64(zz>>1) ^ -int64(zz&1)
	if flag == 0 {
		d *= 1e6
	}
	r.Base += d
	return time.UnixMicro(r.Base).UTC()
}

// SkipString skips a string written by Writer.String.
func (r *Reader) SkipString() {
	if n := r.Count(1); r.err == nil {
		r.B = r.B[n:]
	}
}

// Num reads a number written by Writer.Num.
func (r *Reader) Num() float64 {
	v := r.Varint()
	switch v & 3 {
	case 0:
		return float64(v >> 2)
	case 1:
		return float64(v>>2) / 100
	case 2:
		if v == 2 {
			return r.Float()
		}
	}
	r.fail()
	return 0
}

// Err reports whether any read failed.
func (r *Reader) Err() error { return r.err }

func (r *Reader) fail() { r.err, r.B = ErrCorrupt, nil }

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.B) < 1 {
		r.fail()
		return 0
	}
	b := r.B[0]
	r.B = r.B[1:]
	return b
}

// Bool reads a byte written by Bool.
func (r *Reader) Bool() bool { return r.Byte() == 1 }

// Float reads a value written by Float.
func (r *Reader) Float() float64 {
	switch r.Byte() {
	case 0:
		return float64(r.Varint())
	case 1:
		return math.Float64frombits(r.Uint64())
	}
	r.fail()
	return 0
}

// Uint64 reads eight fixed bytes.
func (r *Reader) Uint64() uint64 {
	if len(r.B) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.B)
	r.B = r.B[8:]
	return v
}

// Uint48 reads six fixed bytes.
func (r *Reader) Uint48() uint64 {
	if len(r.B) < 6 {
		r.fail()
		return 0
	}
	b := r.B
	v := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40
	r.B = r.B[6:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		r.fail()
		return ""
	}
	s := string(r.B[:n])
	r.B = r.B[n:]
	return s
}

// Time reads a time written by Time.
func (r *Reader) Time() time.Time { return timeFromCode(r.Varint()) }

// Count reads a collection length and checks it against the bytes left,
// assuming each element takes at least min bytes.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if min < 1 {
		min = 1
	}
	if n > uint64(len(r.B)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// StringMap appends m as a count and its pairs in key order, so that equal
// maps encode to equal bytes. A nil map (0) stays apart from an empty one
// (count 1 = no pairs): an update that empties a map is not one that leaves
// it alone.
func (w *Writer) StringMap(m map[string]string) {
	if m == nil {
		w.Uvarint(0)
		return
	}
	w.Uvarint(uint64(len(m)) + 1)
	var keys [16]string
	for _, k := range AppendSortedKeys(keys[:0], m) {
		w.String(k)
		w.String(m[k])
	}
}

// StringMap reads a map written by StringMap.
func (r *Reader) StringMap() map[string]string {
	n := r.Uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	if n-1 > uint64(len(r.B)/2) {
		r.fail()
		return nil
	}
	m := make(map[string]string, n-1)
	for range n - 1 {
		k := r.String()
		m[k] = r.String()
	}
	return m
}

// Done reports an earlier read error or bytes left over, naming what was
// decoded.
func (r *Reader) Done(what string) error {
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	if len(r.B) != 0 {
		return fmt.Errorf("decode %s: %d trailing bytes", what, len(r.B))
	}
	return nil
}

// SortedKeys returns the keys of m in order.
func SortedKeys[V any](m map[string]V) []string {
	return AppendSortedKeys(make([]string, 0, len(m)), m)
}

// AppendSortedKeys appends the keys of m to keys and sorts what it
// appended. With keys in an array of the caller's, a map of no more keys
// than the array holds costs no allocation.
func AppendSortedKeys[V any](keys []string, m map[string]V) []string {
	n := len(keys)
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys[n:])
	return keys
}
