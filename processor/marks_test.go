package processor

import (
	"testing"
	"time"
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
