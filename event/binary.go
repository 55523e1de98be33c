package event

import (
	"fmt"

	"github.com/churnwatch/churnwatch/internal/bin"
)

const binaryVersion = 1

// AppendBinary appends the compact binary form of e to b. It is the format
// of the internal repartition topic: about a third of the JSON size and an
// order of magnitude cheaper to decode.
func (e *Event) AppendBinary(b []byte) []byte {
	w := bin.Writer{B: b}
	w.Byte(binaryVersion)
	w.Byte(byte(e.Type))
	w.String(e.ID)
	w.String(e.CustomerID)
	w.Time(e.OccurredAt)
	switch e.Type {
	case Purchase:
		w.Float(e.Amount)
		w.String(e.Currency)
		w.String(e.OrderID)
	case SupportTicket:
		w.String(e.TicketID)
		w.Byte(byte(e.Status))
		w.Byte(byte(e.Priority))
		w.Uvarint(uint64(e.CSAT))
	case Usage:
		w.String(e.Metric)
		w.Float(e.Value)
	case Customer:
		w.Bool(e.Deleted)
		w.Bool(e.HasTier)
		w.String(e.Tier)
		w.Time(e.SignedUpAt)
		w.StringMap(e.Attributes)
	case Feedback:
		w.Byte(byte(e.Kind))
		w.Uvarint(uint64(e.Score))
	}
	return w.B
}

// DecodeBinary parses the output of AppendBinary.
func DecodeBinary(b []byte) (Event, error) {
	var e Event
	r := bin.Reader{B: b}
	if v := r.Byte(); v != binaryVersion {
		return e, fmt.Errorf("decode binary event: unknown version %d", v)
	}
	e.Type = Type(r.Byte())
	e.ID = r.String()
	e.CustomerID = r.String()
	e.OccurredAt = r.Time()
	switch e.Type {
	case Purchase:
		e.Amount = r.Float()
		e.Currency = r.String()
		e.OrderID = r.String()
	case SupportTicket:
		e.TicketID = r.String()
		e.Status = TicketStatus(r.Byte())
		e.Priority = Priority(r.Byte())
		e.CSAT = int(r.Uvarint())
	case Usage:
		e.Metric = r.String()
		e.Value = r.Float()
	case Customer:
		e.Deleted = r.Bool()
		e.HasTier = r.Bool()
		e.Tier = r.String()
		e.SignedUpAt = r.Time()
		e.Attributes = r.StringMap()
	case Feedback:
		e.Kind = FeedbackKind(r.Byte())
		e.Score = int(r.Uvarint())
	default:
		return e, fmt.Errorf("decode binary event: unknown type %d", e.Type)
	}
	return e, r.Done("binary event")
}

// CustomerOf returns the customer id of an event in binary form, reading
// no further: what grouping a batch by customer needs before its events
// are decoded where they are kept.
func CustomerOf(b []byte) (string, error) {
	r := bin.Reader{B: b}
	if v := r.Byte(); v != binaryVersion {
		return "", fmt.Errorf("decode binary event: unknown version %d", v)
	}
	r.Byte()
	r.SkipString() // the event id
	id := r.String()
	if err := r.Err(); err != nil {
		return "", fmt.Errorf("decode binary event: %w", err)
	}
	return id, nil
}
