// Package event defines the input events of churnwatch (contract §1): their
// Go form, the validation of the JSON that upstream systems produce, and the
// compact binary form used on the internal repartition topic. It does no I/O.
package event

import "time"

// Type is the kind of an event.
type Type uint8

// The five event types of the contract.
const (
	Unknown Type = iota
	Purchase
	SupportTicket
	Usage
	Customer
	Feedback
)

var typeNames = [...]string{"", "purchase", "support_ticket", "usage", "customer", "feedback"}

// String returns the contract name of t ("purchase", "support_ticket", …).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return ""
}

// ParseType returns the Type named s, or Unknown.
func ParseType(s string) Type {
	for i, n := range typeNames {
		if i > 0 && n == s {
			return Type(i)
		}
	}
	return Unknown
}

// Types lists every event type in contract order.
func Types() []Type { return []Type{Purchase, SupportTicket, Usage, Customer, Feedback} }

// TicketStatus is the status carried by a support-ticket event.
type TicketStatus uint8

// Ticket statuses.
const (
	Opened TicketStatus = iota + 1
	Reopened
	Solved
	Closed
)

var statusNames = [...]string{"", "opened", "reopened", "solved", "closed"}

func (s TicketStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return ""
}

// Priority of a support ticket.
type Priority uint8

// Ticket priorities; Normal is the default.
const (
	Low Priority = iota + 1
	Normal
	High
	Urgent
)

var priorityNames = [...]string{"", "low", "normal", "high", "urgent"}

func (p Priority) String() string {
	if int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return ""
}

// FeedbackKind is the survey a feedback score answers.
type FeedbackKind uint8

// Feedback kinds and their score ranges: NPS 0–10, CSAT 1–5, CES 1–7.
const (
	NPS FeedbackKind = iota + 1
	CSAT
	CES
)

var kindNames = [...]string{"", "nps", "csat", "ces"}

func (k FeedbackKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

// Event is one validated input event. Only the fields of its Type are set.
// OccurredAt is UTC with microsecond precision, so that the JSON and binary
// forms of an event are always equal.
type Event struct {
	ID         string
	CustomerID string
	OccurredAt time.Time
	Type       Type

	// purchase
	Amount   float64
	Currency string
	OrderID  string

	// support_ticket; CSAT is 0 when absent
	TicketID string
	Status   TicketStatus
	Priority Priority
	CSAT     int

	// usage
	Metric string
	Value  float64

	// customer; HasTier/HasSignup tell whether the update carries them
	Tier       string
	HasTier    bool
	SignedUpAt time.Time
	Attributes map[string]string
	Deleted    bool

	// feedback
	Kind  FeedbackKind
	Score int
}

// Before orders events by occurred_at, then by id: the order in which the
// engine applies them, whatever order they arrived in.
func (e *Event) Before(o *Event) bool {
	if !e.OccurredAt.Equal(o.OccurredAt) {
		return e.OccurredAt.Before(o.OccurredAt)
	}
	return e.ID < o.ID
}
