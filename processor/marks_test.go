package processor

import (
	"reflect"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/event"
)

func TestWatermark(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	m := marks{Topics: map[string]int32{}, Marks: map[source]time.Time{}}
	if w := m.watermark(5 * time.Minute); !w.IsZero() {
		t.Fatalf("no topics known: watermark %s, want none", w)
	}
	m.observe(marks{Topics: map[string]int32{"usage": 2, "purchases": 1}, Marks: map[source]time.Time{
		{"usage", 0}: t0.Add(10 * time.Hour), {"usage", 1}: t0.Add(9 * time.Hour),
	}})
	if w := m.watermark(5 * time.Minute); !w.IsZero() {
		t.Fatalf("purchases/0 has no mark yet (unread): watermark %s, want held back", w)
	}
	m.observe(marks{Marks: map[source]time.Time{{"purchases", 0}: t0.Add(2 * time.Hour)}})
	if w := m.watermark(5 * time.Minute); !w.Equal(t0.Add(2*time.Hour - 5*time.Minute)) {
		t.Fatalf("watermark %s, want the slowest partition minus lateness", w)
	}
	// Marks never move back, and neither does the watermark.
	m.observe(marks{Marks: map[source]time.Time{{"purchases", 0}: t0}})
	if w := m.watermark(5 * time.Minute); !w.Equal(t0.Add(2*time.Hour - 5*time.Minute)) {
		t.Fatalf("watermark moved back to %s", w)
	}
	// A new partition appears: it holds the watermark where it was.
	m.observe(marks{Topics: map[string]int32{"purchases": 2}})
	m.observe(marks{Marks: map[source]time.Time{{"purchases", 0}: t0.Add(20 * time.Hour)}})
	if w := m.watermark(5 * time.Minute); !w.Equal(t0.Add(2*time.Hour - 5*time.Minute)) {
		t.Fatalf("unread new partition: watermark %s, want it held", w)
	}
	back, err := decodeMarks(m.encode())
	if err != nil || back.W != m.W || len(back.Marks) != len(m.Marks) || back.Topics["purchases"] != 2 {
		t.Fatalf("encode/decode: %+v %v", back, err)
	}
	if w, err := WatermarkOf(m.encode()); err != nil || !w.Equal(m.W) || w.IsZero() {
		t.Fatalf("WatermarkOf: %s %v, want %s", w, err, m.W)
	}
	if _, err := decodeMarks([]byte{9}); err == nil {
		t.Fatal("unknown version decoded")
	}
}

// TestAccept walks the origins a state-stage partition can meet from one
// source partition and checks which events are taken, and that what it
// keeps survives its watermark record.
func TestAccept(t *testing.T) {
	const src = 7 << 32
	o := func(offset, prev int64) event.Origin { return event.Origin{Source: src, Offset: offset, Prev: prev} }
	type step struct {
		o    event.Origin
		want string // "" when taken
	}
	for _, c := range []struct {
		name  string
		loose bool
		steps []step
	}{
		{"in order", false, []step{{o(3, -1), ""}, {o(5, 3), ""}, {o(9, 5), ""}}},
		{"forwarded again after a restart", false, []step{
			{o(3, -1), ""}, {o(5, 3), ""}, {o(9, 5), ""},
			{o(3, -1), forwardedAgain}, {o(5, 3), forwardedAgain}, {o(9, 5), forwardedAgain}, {o(12, 9), ""},
		}},
		{"a restart from a commit past everything applied", false, []step{{o(3, -1), ""}, {o(20, -1), ""}}},
		// A write of two batches: the first (5, 9) failed, the second
		// (12, 15) went through, and the retry sends both again.
		{"a failed batch overtaken, then the retry", false, []step{
			{o(3, -1), ""}, {o(12, 9), overtook}, {o(15, 12), overtook},
			{o(5, 3), ""}, {o(9, 5), ""}, {o(12, 9), ""}, {o(15, 12), ""},
		}},
		{"the very first batch overtaken", false, []step{{o(12, 9), overtook}, {o(9, -1), ""}, {o(12, 9), ""}}},
		// Two sessions during a rebalance: the old one still sends 9, 12
		// while the new one, started at the commit 5, sends 5, 9, 12, 15.
		{"two sessions interleaved", false, []step{
			{o(3, -1), ""}, {o(5, 3), ""}, {o(5, -1), forwardedAgain}, {o(9, 5), ""}, {o(9, 5), forwardedAgain},
			{o(12, 9), ""}, {o(12, 9), forwardedAgain}, {o(15, 12), ""},
		}},
		// Redis lost writes: what it kept ends at 3, the session went on
		// to 30; its next event is taken, and the chain holds from there.
		{"loose after lost writes", true, []step{{o(31, 30), ""}, {o(40, 35), overtook}, {o(35, 31), ""}}},
		{"a record without origin", false, []step{{event.Origin{Prev: -1}, ""}, {event.Origin{Prev: -1}, ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMarks()
			if c.loose {
				m.loose, m.Applied[src] = true, 3
			}
			for i, s := range c.steps {
				why, ok := m.accept(s.o)
				if ok != (s.want == "") || why != s.want {
					t.Fatalf("step %d %+v: %q %v, want %q", i, s.o, why, ok, s.want)
				}
			}
			m.Next = 77
			back, err := decodeMarks(m.encode())
			if err != nil || !reflect.DeepEqual(back.Applied, m.Applied) || back.Next != 77 || back.loose {
				t.Fatalf("encode/decode: %+v %v", back, err)
			}
		})
	}
	// A record of version 1 (before Applied) decodes, and is loose.
	v1 := newMarks()
	v1.Topics["usage"] = 1
	b := v1.encode()
	b[0] = 1
	b = b[:len(b)-2] // no Applied, no Next
	back, err := decodeMarks(b)
	if err != nil || !back.loose || back.Topics["usage"] != 1 {
		t.Fatalf("version 1: %+v %v", back, err)
	}
}
