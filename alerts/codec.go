package alerts

import (
	"fmt"

	"github.com/churnwatch/churnwatch/internal/bin"
)

const codecVersion = 1

// AppendBinary appends a compact encoding of a to b, about a quarter of
// its JSON, without its AlertID (the alert index keeps alerts in it by
// id). Decode reads it.
func (a *Alert) AppendBinary(b []byte) []byte {
	w := bin.Writer{B: b}
	w.Byte(codecVersion)
	w.String(a.Rule)
	w.String(a.Severity)
	w.String(a.CustomerID)
	w.String(string(a.Status))
	w.Time(a.Time)
	w.Varint(int64(a.RiskScore))
	w.Bool(a.Reasons != nil)
	w.Uvarint(uint64(len(a.Reasons)))
	for _, r := range a.Reasons {
		w.String(r)
	}
	s := &a.Customer
	w.String(s.Tier)
	w.String(s.Segment)
	w.Bool(s.LastPurchaseAt != nil)
	if s.LastPurchaseAt != nil {
		w.Time(*s.LastPurchaseAt)
	}
	w.Float(s.TotalSpend)
	w.Varint(s.OpenTickets)
	w.Bool(s.NPS != nil)
	if s.NPS != nil {
		w.Varint(*s.NPS)
	}
	w.Bool(a.Holdout)
	return w.B
}

// Decode decodes the alert with AlertID id that AppendBinary encoded.
func Decode(id string, b []byte) (Alert, error) {
	var a Alert
	err := a.decode(id, b)
	return a, err
}

func (a *Alert) decode(id string, b []byte) error {
	r := bin.Reader{B: b}
	if v := r.Byte(); v != codecVersion {
		return fmt.Errorf("decode alert %s: unknown version %d", id, v)
	}
	*a = Alert{AlertID: id, Rule: r.String(), Severity: r.String(), CustomerID: r.String(),
		Status: Status(r.String()), Time: r.Time(), RiskScore: int(r.Varint())}
	hasReasons, n := r.Bool(), r.Count(1)
	if hasReasons {
		a.Reasons = make([]string, n)
		for i := range a.Reasons {
			a.Reasons[i] = r.String()
		}
	} else if n != 0 {
		return fmt.Errorf("decode alert %s: %w", a.AlertID, bin.ErrCorrupt)
	}
	s := &a.Customer
	s.Tier, s.Segment = r.String(), r.String()
	if r.Bool() {
		t := r.Time()
		s.LastPurchaseAt = &t
	}
	s.TotalSpend = r.Float()
	s.OpenTickets = r.Varint()
	if r.Bool() {
		n := r.Varint()
		s.NPS = &n
	}
	a.Holdout = r.Bool()
	return r.Done("alert")
}
