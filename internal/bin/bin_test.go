package bin

import (
	"math"
	"testing"
	"time"
)

func TestNumRoundTrip(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 49.99, -0.01, 0.1 + 0.2, 1e15, 1 << 52, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), 123.456, 5e-324} {
		w := Writer{}
		w.Num(f)
		r := Reader{B: w.B}
		got := r.Num()
		if err := r.Done("num"); err != nil {
			t.Fatalf("%g: %v", f, err)
		}
		if math.Float64bits(got) != math.Float64bits(f) && !(math.IsNaN(f) && math.IsNaN(got)) {
			t.Errorf("%g came back as %g", f, got)
		}
	}
	w := Writer{}
	w.Num(49.99)
	w.Num(7)
	if len(w.B) != 3+1 {
		t.Errorf("49.99 and 7 took %d bytes, want 4", len(w.B))
	}
}

func TestTimeRelRoundTrip(t *testing.T) {
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixMicro()
	for _, at := range []time.Time{{}, time.UnixMicro(base).UTC(), time.UnixMicro(base + 1).UTC(), time.UnixMicro(base - 1).UTC(),
		time.UnixMicro(base).Add(-30 * 24 * time.Hour).UTC(), time.UnixMicro(base).Add(400 * 24 * time.Hour).UTC(),
		time.Unix(0, 0).UTC(), time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 1000, time.UTC)} {
		w := Writer{Base: base}
		w.TimeRel(at)
		r := Reader{B: w.B, Base: base}
		got := r.TimeRel()
		if err := r.Done("time"); err != nil || !got.Equal(at) {
			t.Errorf("%s came back as %s (%v)", at, got, err)
		}
	}
	w := Writer{Base: base}
	w.TimeRel(time.UnixMicro(base).Add(-30 * 24 * time.Hour))
	if len(w.B) > 4 {
		t.Errorf("a time 30 days before the base took %d bytes", len(w.B))
	}
	// A run of times, each relative to the one before.
	w = Writer{Base: base}
	var run []time.Time
	for i := range 20 {
		at := time.UnixMicro(base).Add(time.Duration(i%3) * 7 * time.Hour).Add(time.Duration(i%2) * time.Microsecond).UTC()
		if i%5 == 0 {
			at = time.Time{}
		}
		run = append(run, at)
		w.TimeRel(at)
	}
	r := Reader{B: w.B, Base: base}
	for i, want := range run {
		if got := r.TimeRel(); !got.Equal(want) {
			t.Fatalf("time %d of the run: %s, want %s", i, got, want)
		}
	}
	if err := r.Done("run"); err != nil {
		t.Fatal(err)
	}
	w = Writer{Base: base}
	w.TimeRel(time.UnixMicro(base + 5e6))
	n := len(w.B)
	w.TimeRel(time.UnixMicro(base + 5e6))
	if len(w.B)-n != 1 {
		t.Errorf("a time equal to the one before took %d bytes", len(w.B)-n)
	}
}
