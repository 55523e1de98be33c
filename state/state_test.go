package state

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ev(id string, typ event.Type, at time.Time) event.Event {
	return event.Event{ID: id, CustomerID: "c1", Type: typ, OccurredAt: at}
}

// applyAll receives evs and applies them in event order up to their times.
func applyAll(c *Customer, evs ...event.Event) {
	for i, e := range evs {
		c.Receive(e, c.Offset+1+int64(i))
	}
	for _, e := range c.Pending {
		if e.OccurredAt.After(c.AsOf) {
			c.AsOf = e.OccurredAt
		}
		c.Apply(&e)
	}
	c.Pending = nil
}

func TestReceiveDeduplicates(t *testing.T) {
	c := New("c1")
	e := ev("e1", event.Usage, t0)
	if !c.Receive(e, 0) {
		t.Fatal("first receive rejected")
	}
	if c.Receive(e, 0) {
		t.Fatal("redelivered offset accepted")
	}
	if c.Receive(e, 1) {
		t.Fatal("duplicate event id accepted")
	}
	if !c.Receive(ev("e2", event.Usage, t0.Add(-time.Hour)), 2) {
		t.Fatal("new event rejected")
	}
	if len(c.Pending) != 2 || c.Pending[0].ID != "e2" {
		t.Fatalf("pending not in event order: %+v", c.Pending)
	}
}

// TestDedupWindow: an event id is remembered for DedupDays whole days of
// event time after its day, and forgotten the day after; the days survive
// the encoding.
func TestDedupWindow(t *testing.T) {
	day0 := DayStart(DayOf(t0))
	for _, c := range []struct {
		name string
		at   time.Time // AsOf when the copy arrives
		dup  bool
	}{
		{"the same day", day0.Add(23 * time.Hour), true},
		{"DedupDays days later, the last minute", day0.Add((DedupDays+1)*Day - time.Minute), true},
		{"the day after", day0.Add((DedupDays + 1) * Day), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cu := New("c1")
			e := ev("e1", event.Usage, day0.Add(time.Minute))
			applyAll(cu, e)
			cu.AsOf = c.at
			cu.Prune()
			back, err := Unmarshal(cu.ID, cu.AppendBinary(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back.Seen, cu.Seen) {
				t.Fatalf("seen ids %v decoded as %v", cu.Seen, back.Seen)
			}
			if got := !back.Receive(e, 5); got != c.dup {
				t.Fatalf("the copy taken for a duplicate: %v, want %v", got, c.dup)
			}
		})
	}
}

func TestLatestByOccurredAt(t *testing.T) {
	c := New("c1")
	newer := ev("p2", event.Customer, t0.Add(time.Hour))
	newer.Tier, newer.HasTier = "vip", true
	older := ev("p1", event.Customer, t0)
	older.Tier, older.HasTier = "regular", true
	nps1 := ev("f2", event.Feedback, t0.Add(time.Hour))
	nps1.Kind, nps1.Score = event.NPS, 9
	nps0 := ev("f1", event.Feedback, t0)
	nps0.Kind, nps0.Score = event.NPS, 2
	// Apply in arrival order, newest first: the older values must not win.
	for _, e := range []event.Event{newer, nps1, older, nps0} {
		c.AsOf = t0.Add(time.Hour)
		c.Apply(&e)
	}
	if c.Profile.Tier != "vip" {
		t.Errorf("tier = %q, want vip", c.Profile.Tier)
	}
	if c.Feedback.NPS != 9 || c.View().Feedback.NPSCategory != "promoter" {
		t.Errorf("nps = %d (%s), want 9 promoter", c.Feedback.NPS, c.View().Feedback.NPSCategory)
	}
}

func TestWindows(t *testing.T) {
	c := New("c1")
	var evs []event.Event
	for i, days := range []int{400, 200, 60, 20, 1} {
		e := ev("p"+string(rune('a'+i)), event.Purchase, t0.Add(-time.Duration(days)*Day))
		e.Amount = 10
		evs = append(evs, e)
	}
	for i, days := range []int{40, 20, 3} {
		e := ev("t"+string(rune('a'+i)), event.SupportTicket, t0.Add(-time.Duration(days)*Day))
		e.TicketID, e.Status = "tk"+string(rune('a'+i)), event.Opened
		evs = append(evs, e)
	}
	closeB := ev("tz", event.SupportTicket, t0.Add(-time.Hour))
	closeB.TicketID, closeB.Status = "tkb", event.Solved
	evs = append(evs, closeB)
	for d := range 35 {
		e := ev("u"+string(rune('a'+d)), event.Usage, t0.Add(-time.Duration(d)*Day))
		e.Metric, e.Value = "sessions", float64(1+d/7)
		evs = append(evs, e)
	}
	applyAll(c, evs...)
	c.AsOf = t0
	v := c.View()
	if v.Purchases.Count != 5 || v.Purchases.Total != 50 {
		t.Errorf("count/total = %d/%g", v.Purchases.Count, v.Purchases.Total)
	}
	if v.Purchases.Spend30 != 20 || v.Purchases.Spend90 != 30 || v.Purchases.Spend365 != 40 {
		t.Errorf("spend 30/90/365 = %g/%g/%g, want 20/30/40", v.Purchases.Spend30, v.Purchases.Spend90, v.Purchases.Spend365)
	}
	if want := 399 * Day / 4; v.Purchases.Interval != want {
		t.Errorf("interval = %s, want %s", v.Purchases.Interval, want)
	}
	if v.Tickets.Opened30 != 2 || v.Tickets.Opened7 != 1 || v.Tickets.Open != 2 {
		t.Errorf("tickets opened7/opened30/open = %d/%d/%d, want 1/2/2", v.Tickets.Opened7, v.Tickets.Opened30, v.Tickets.Open)
	}
	// Days 0–6 have value 1; days 7–13: 2, 14–20: 3, 21–27: 4, 28–34: 5.
	if v.Usage.Last7 != 7 || v.Usage.Prior28 != 7*(2+3+4+5) || v.Usage.WeeklyAvg28 != 24.5 {
		t.Errorf("usage last7/prior28/avg = %g/%g/%g", v.Usage.Last7, v.Usage.Prior28, v.Usage.WeeklyAvg28)
	}
	// The next window edge is the earliest of all of them after t0.
	if got, want := c.NextEdges().Next(), DayStart(DayOf(t0)+1); !got.Equal(want) {
		t.Errorf("next edge %s, want %s", got, want)
	}
}

func TestPruneAndCodec(t *testing.T) {
	c := richState()
	back, err := Unmarshal(c.ID, c.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("codec round trip:\n got %+v\nwant %+v", back, c)
	}
	c.AsOf = t0.Add(400 * Day)
	c.Prune()
	if len(c.Purchases.Recent) != 0 || len(c.Tickets.Opened) != 0 || len(c.Usage) != 0 || len(c.Seen) != 0 {
		t.Fatalf("prune left %+v", c)
	}
	if c.Purchases.Count != 1 || c.Purchases.Total != 12.75 {
		t.Fatal("prune lost lifetime figures")
	}
}

func TestErase(t *testing.T) {
	c := New("c1")
	p := ev("p", event.Purchase, t0)
	p.Amount = 5
	del := ev("d", event.Customer, t0.Add(time.Hour))
	del.Deleted = true
	applyAll(c, p, del)
	if !c.Deleted || c.Purchases.Count != 0 || c.FirstSeen != (time.Time{}) {
		t.Fatalf("erase kept data: %+v", c)
	}
	if c.Receive(p, 99) {
		t.Fatal("an erased customer's old event was accepted again")
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	c := New("c1")
	b := c.AppendBinary(nil)
	for i := range len(b) {
		if _, err := Unmarshal("c1", b[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	c := New("c1")
	applyAll(c, ev("u", event.Usage, t0))
	f.Add(c.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Unmarshal("c1", b)
		if err != nil {
			return
		}
		if _, err := Unmarshal(c.ID, c.AppendBinary(nil)); err != nil {
			t.Fatalf("re-encode failed: %v", err)
		}
	})
}

// busy is a customer of a busy year: 30 events a day, so that the ids
// remembered for de-duplication reach MaxDedupIDs, and the detail kept for
// every window.
func busy() *Customer {
	c := New("c1")
	var evs []event.Event
	for d := range 365 {
		day := t0.Add(time.Duration(d) * Day)
		for i := range 30 {
			e := ev(fmt.Sprintf("e%d-%d", d, i), event.Usage, day.Add(time.Duration(i)*time.Minute))
			e.Metric, e.Value = fmt.Sprintf("m%d", i%4), 1
			switch {
			case i == 0 && d%7 == 0:
				e.Type, e.Amount = event.Purchase, 20
			case i == 1 && d%10 == 0:
				e.Type, e.TicketID, e.Status = event.SupportTicket, e.ID, event.Opened
			}
			evs = append(evs, e)
		}
	}
	applyAll(c, evs...)
	c.Prune()
	return c
}

func BenchmarkAppendBinary(b *testing.B) {
	c := busy()
	var buf []byte
	for b.Loop() {
		buf = c.AppendBinary(buf[:0])
	}
	b.ReportMetric(float64(len(buf)), "bytes/state")
}

// BenchmarkUnmarshalReceive decodes a stored state and receives one event
// into it, as the processor does with a state it has not cached.
func BenchmarkUnmarshalReceive(b *testing.B) {
	c := busy()
	enc := c.AppendBinary(nil)
	e := ev("new", event.Usage, c.AsOf.Add(time.Minute))
	for b.Loop() {
		d, err := Unmarshal(c.ID, enc)
		if err != nil {
			b.Fatal(err)
		}
		if !d.Receive(e, d.Offset+1) {
			b.Fatal("event not received")
		}
	}
}

// version1 is a state as the encoding of version 1 wrote it: the state of
// richState.
const version1 = "010863207b317d3a207882a0be88f1fca50682a08df0e5eda5061c000082a0be88f1fca50682a0be88f1fca50682a0be88f1fca50682a0be88f1fca506000376697082a0be88f1fca50682a083abedf7a50682a0be88f1fca50682a0be88f1fca5060204706c616e0370726f0201000000000080294082a0be88f1fca50682a0be88f1fca5060182a0be88f1fca50601000000000080294001d8b96ab50735c8080182a0be88f1fca50682a0be88f1fca5060482a0be88f1fca506010873657373696f6e7302bcc00201000000000000f83fc2c002000601010100000001415a01017801017282a0be88f1fca50602696482a0f9e5f481a6060005a64967b5077cc40882a08df0e5eda5066f0902864ced63af82a0be88f1fca506f2ef01864cde63af82a0be88f1fca506a30202864ce963af82a0be88f1fca506f00002864ce863af82a0be88f1fca506"

// version2 is the same state as version 2 wrote it, with the risk reason
// "x" that states kept then.
const version2 = "0282a0be88f1fca506ffa33f1c000081a43f010101000376697001ff8b15818c15010204706c616e0370726f02da4f01010101da4f01d8b96ab50735c8080101010401010873657373696f6e7302bcc002b209061801010100000001415a01017801017201026964818c150005a64967b5077cc408ffaf546f0902864ced63af81a43ff2ef01864cde63af01a30202864ce963af01f00002864ce863af01"

// richState is a customer with something in every part of its state.
func richState() *Customer {
	c := New("c {1}: x")
	p := ev("p", event.Purchase, t0)
	p.Amount = 12.75
	prof := ev("c", event.Customer, t0)
	prof.Tier, prof.HasTier, prof.SignedUpAt, prof.Attributes = "vip", true, t0.Add(-Day), map[string]string{"plan": "pro"}
	tk := ev("t", event.SupportTicket, t0)
	tk.TicketID, tk.Status, tk.CSAT = "tk", event.Opened, 2
	u := ev("u", event.Usage, t0)
	u.Metric, u.Value = "sessions", 3
	u2 := ev("u2", event.Usage, t0.Add(-3*Day))
	u2.Metric, u2.Value = "sessions", 1.5
	applyAll(c, u2, p, prof, tk, u)
	c.Receive(ev("later", event.Usage, t0.Add(Day)), 10)
	c.Active = []Active{{Rule: "r", Since: t0, AlertID: "id"}}
	c.Risk, c.Segment, c.Deadline = 45, "A", t0.Add(Day)
	return c
}

// TestCodecVersions: states stored by versions 1 and 2 still decode, to
// the same state (their risk reasons left out); version 3 writes them
// shorter.
func TestCodecVersions(t *testing.T) {
	want := richState()
	now := want.AppendBinary(nil)
	back, err := Unmarshal(want.ID, now)
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("version 3 round trip: %v\n got %+v\nwant %+v", err, back, want)
	}
	for i, h := range []string{version1, version2} {
		old, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(want.ID, old)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("version %d decoded:\n got %+v\nwant %+v", i+1, got, want)
		}
		if len(now) >= len(old) {
			t.Errorf("version 3 takes %d bytes, version %d %d", len(now), i+1, len(old))
		}
		t.Logf("version %d: %d bytes, version 3: %d bytes", i+1, len(old), len(now))
	}
}

// TestCodecAlertIDs: an episode's id is left out of the encoding when its
// rule, customer and start give it back, and kept when they do not (a
// start finer than the encoding's microseconds).
func TestCodecAlertIDs(t *testing.T) {
	c := New("c1")
	c.AsOf = t0
	fine := t0.Add(1500 * time.Nanosecond)
	c.Active = []Active{{Rule: "r", Since: t0, AlertID: alerts.ID("r", "c1", t0)}, {Rule: "q", Since: fine, AlertID: alerts.ID("q", "c1", fine)}}
	b := c.AppendBinary(nil)
	back, err := Unmarshal("c1", b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Active[0].AlertID != c.Active[0].AlertID || back.Active[1].AlertID != c.Active[1].AlertID {
		t.Errorf("alert ids %q, want %q", []string{back.Active[0].AlertID, back.Active[1].AlertID}, []string{c.Active[0].AlertID, c.Active[1].AlertID})
	}
	if n := strings.Count(string(b), c.Active[0].AlertID); n != 0 {
		t.Errorf("a derivable id is in the encoding")
	}
	if n := strings.Count(string(b), c.Active[1].AlertID); n != 1 {
		t.Errorf("an id that cannot be derived is not in the encoding")
	}
}
