package state

import (
	"fmt"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/bin"
)

// codecVersion is the encoding AppendBinary writes. Versions 1 (absolute
// times, 8-byte numbers) and 2 (with the risk reasons, now worded on read:
// engine.Explain) are still read.
const codecVersion = 3

// MarshalBinary encodes the state compactly: varint counts, times relative
// to the state's own clock (AsOf), numbers as integers or cents where they
// are, usage days as steps from the previous day, hashes instead of ids,
// the pending events in their binary form.
func (c *Customer) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil), nil }

// AppendBinary appends the encoding of c to b.
func (c *Customer) AppendBinary(b []byte) []byte {
	w := bin.Writer{B: b}
	w.Byte(codecVersion) // the id is the key's: not repeated
	w.Time(c.AsOf)
	w.Base = c.AsOf.Unix() * 1e6
	w.TimeRel(c.FirstSeen)
	w.Varint(c.Offset)
	w.Bool(c.Deleted)
	for _, t := range c.LastSeen {
		w.TimeRel(t)
	}
	pr := &c.Profile
	w.String(pr.Tier)
	w.TimeRel(pr.TierAt)
	w.TimeRel(pr.SignedUpAt)
	w.TimeRel(pr.SignupAt)
	w.TimeRel(pr.AttrsAt)
	w.StringMap(pr.Attributes)
	p := &c.Purchases
	w.Varint(p.Count)
	w.Num(p.Total)
	w.TimeRel(p.First)
	w.TimeRel(p.Last)
	w.Uvarint(uint64(len(p.Recent)))
	for _, x := range p.Recent {
		w.TimeRel(x.At)
		w.Num(x.Amount)
	}
	t := &c.Tickets
	w.Uvarint(uint64(len(t.Open)))
	for _, h := range t.Open {
		w.Uint64(h)
	}
	w.Uvarint(uint64(len(t.Opened)))
	for _, at := range t.Opened {
		w.TimeRel(at)
	}
	w.TimeRel(t.Last)
	w.Varint(int64(t.LatestCSAT))
	w.TimeRel(t.CSATAt)
	var keys [MaxMetrics]string
	metrics := bin.AppendSortedKeys(keys[:0], c.Usage)
	w.Uvarint(uint64(len(metrics)))
	for _, m := range metrics {
		w.String(m)
		bs := c.Usage[m]
		w.Uvarint(uint64(len(bs)))
		prev := int32(0)
		for _, x := range bs {
			w.Varint(int64(x.Day - prev)) // oldest first: after the first, a step of a day or a few
			w.Num(x.Value)
			prev = x.Day
		}
	}
	f := &c.Feedback
	w.Varint(int64(f.NPS))
	w.Varint(int64(f.CSAT))
	w.Varint(int64(f.CES))
	w.TimeRel(f.NPSAt)
	w.TimeRel(f.CSATAt)
	w.TimeRel(f.CESAt)
	w.String(c.Segment)
	w.Varint(int64(c.Risk))
	w.Uvarint(uint64(len(c.Active)))
	for _, a := range c.Active {
		w.String(a.Rule)
		w.TimeRel(a.Since)
		// The id is written only when it is not the one the episode's
		// rule, customer and start (as decoded, to the µs) give.
		if a.AlertID == alerts.ID(a.Rule, c.ID, a.Since.Truncate(time.Microsecond)) {
			w.String("")
		} else {
			w.String(a.AlertID)
		}
	}
	w.TimeRel(c.Deadline)
	w.Uvarint(uint64(len(c.Pending)))
	for i := range c.Pending {
		n := len(w.B)
		w.B = append(w.B, 0, 0, 0) // room for a small length prefix
		w.B = c.Pending[i].AppendBinary(w.B, event.Origin{Prev: -1})
		w.B = putLen(w.B, n, len(w.B)-n-3)
	}
	w.Uvarint(uint64(len(c.Seen)))
	day := DayOf(c.AsOf)
	for _, s := range c.Seen {
		w.Uint48(s.Hash)
		w.Varint(int64(s.Day - day)) // from the one before: mostly 0, sorted by day
		day = s.Day
	}
	return w.B
}

// putLen writes l as a three-byte length at b[at:at+3].
func putLen(b []byte, at, l int) []byte {
	b[at], b[at+1], b[at+2] = byte(l), byte(l>>8), byte(l>>16)
	return b
}

// spare is the room a decoded list of a state keeps for the customer's next
// events (a purchase, a ticket, an id to remember), so that the first
// changes after decoding do not copy the list.
const spare = 4

// room returns an empty slice with room for n elements and extra more, or
// nil when n is 0: what a decoded list is read into.
func room[T any](n, extra int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n+extra)
}

// Unmarshal decodes the state of customer id written by AppendBinary.
func Unmarshal(id string, b []byte) (*Customer, error) {
	r := &bin.Reader{B: b}
	v := r.Byte()
	if v < 1 || v > codecVersion {
		return nil, fmt.Errorf("decode customer state: unknown version %d", v)
	}
	c := &Customer{ID: id}
	if v == 1 {
		c.ID = r.String()
	}
	c.AsOf = r.Time()
	tm, num := r.Time, r.Float
	if v >= 2 {
		r.Base = c.AsOf.Unix() * 1e6
		tm, num = r.TimeRel, r.Num
	}
	c.FirstSeen = tm()
	c.Offset = r.Varint()
	c.Deleted = r.Bool()
	for i := range c.LastSeen {
		c.LastSeen[i] = tm()
	}
	pr := &c.Profile
	pr.Tier = r.String()
	pr.TierAt = tm()
	pr.SignedUpAt = tm()
	pr.SignupAt = tm()
	pr.AttrsAt = tm()
	pr.Attributes = r.StringMap()
	p := &c.Purchases
	p.Count = r.Varint()
	p.Total = num()
	p.First = tm()
	p.Last = tm()
	n := r.Count(2)
	p.Recent = room[Purchase](n, spare)
	for range n {
		p.Recent = append(p.Recent, Purchase{At: tm(), Amount: num()})
	}
	t := &c.Tickets
	n = r.Count(8)
	t.Open = room[uint64](n, spare)
	for range n {
		t.Open = append(t.Open, r.Uint64())
	}
	n = r.Count(1)
	t.Opened = room[time.Time](n, spare)
	for range n {
		t.Opened = append(t.Opened, tm())
	}
	t.Last = tm()
	t.LatestCSAT = int(r.Varint())
	t.CSATAt = tm()
	if n := r.Count(2); n > 0 {
		c.Usage = make(map[string][]Bucket, n)
		for range n {
			m := r.String()
			k := r.Count(2)
			bs := make([]Bucket, 0, k+spare)
			prev := int32(0)
			for range k {
				day := int32(r.Varint())
				if v >= 2 {
					day += prev
				}
				bs = append(bs, Bucket{Day: day, Value: num()})
				prev = day
			}
			c.Usage[m] = bs
		}
	}
	f := &c.Feedback
	f.NPS = int(r.Varint())
	f.CSAT = int(r.Varint())
	f.CES = int(r.Varint())
	f.NPSAt = tm()
	f.CSATAt = tm()
	f.CESAt = tm()
	c.Segment = r.String()
	c.Risk = int(r.Varint())
	if v < 3 {
		for range r.Count(1) {
			r.SkipString() // the risk reasons
		}
	}
	n = r.Count(3)
	c.Active = room[Active](n, 0)
	for range n {
		a := Active{Rule: r.String(), Since: tm(), AlertID: r.String()}
		if a.AlertID == "" && v >= 2 {
			a.AlertID = alerts.ID(a.Rule, c.ID, a.Since)
		}
		c.Active = append(c.Active, a)
	}
	c.Deadline = tm()
	for range r.Count(4) {
		if len(r.B) < 3 {
			return nil, fmt.Errorf("decode customer state: %w", bin.ErrCorrupt)
		}
		l := int(r.B[0]) | int(r.B[1])<<8 | int(r.B[2])<<16
		if l > len(r.B)-3 {
			return nil, fmt.Errorf("decode customer state: %w", bin.ErrCorrupt)
		}
		e, err := event.DecodeBinary(r.B[3 : 3+l])
		if err != nil {
			return nil, fmt.Errorf("decode customer state: pending event: %w", err)
		}
		c.Pending = append(c.Pending, e)
		r.B = r.B[3+l:]
	}
	if v < 3 {
		n = r.Count(9)
		c.Seen = room[Seen](n, spare)
		for range n {
			c.Seen = append(c.Seen, Seen{Hash: r.Uint64() & (1<<48 - 1), Day: DayOf(tm())})
		}
	} else {
		n = r.Count(7)
		c.Seen = room[Seen](n, spare)
		day := DayOf(c.AsOf)
		for range n {
			h := r.Uint48()
			day += int32(r.Varint())
			c.Seen = append(c.Seen, Seen{Hash: h, Day: day})
		}
	}
	if err := r.Done("customer state"); err != nil {
		return nil, err
	}
	return c, nil
}
