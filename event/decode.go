package event

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Limits on input; a message beyond them is bad input.
const (
	MaxMessageBytes = 1 << 20 // whole Kafka value
	MaxIDChars      = 200     // id, customer_id, ticket_id, order_id
	MaxDepth        = 32      // JSON nesting, unknown fields included
	MaxAttributes   = 64
	MaxAttrKey      = 128
	MaxAttrValue    = 1024
	MaxFuture       = time.Hour // occurred_at may lead the wall clock by this much
)

// Error is a validation error: the human-readable reason a message was
// rejected, as written to the churnwatch-error header of the dead letter.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

func bad(format string, args ...any) error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// wire is the JSON shape of every event type; pointers tell absent from zero.
type wire struct {
	ID         *string `json:"id"`
	CustomerID *string `json:"customer_id"`
	OccurredAt *string `json:"occurred_at"`
	Type       *string `json:"type"`

	Amount   *float64 `json:"amount"`
	Currency *string  `json:"currency"`
	OrderID  *string  `json:"order_id"`

	TicketID *string  `json:"ticket_id"`
	Status   *string  `json:"status"`
	Priority *string  `json:"priority"`
	CSAT     *float64 `json:"csat"`

	Metric *string  `json:"metric"`
	Value  *float64 `json:"value"`

	Tier       *string            `json:"tier"`
	SignedUpAt *string            `json:"signed_up_at"`
	Attributes *map[string]string `json:"attributes"`
	Deleted    *bool              `json:"deleted"`

	Kind  *string  `json:"kind"`
	Score *float64 `json:"score"`
}

// Decode parses and validates one JSON event read from a topic whose default
// event type is topicType (Unknown when the topic has none). now is the wall
// clock: an occurred_at more than MaxFuture after it is rejected, so a bad
// clock upstream can never drag event time forward. Every error is an *Error.
func Decode(data []byte, topicType Type, now time.Time) (Event, error) {
	var e Event
	if len(data) == 0 {
		return e, bad("empty message")
	}
	if len(data) > MaxMessageBytes {
		return e, bad("message of %d bytes exceeds the limit of %d", len(data), MaxMessageBytes)
	}
	if !utf8.Valid(data) {
		return e, bad("message is not valid UTF-8")
	}
	if err := checkDepth(data); err != nil {
		return e, err
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return e, bad("invalid JSON: %s", jsonReason(err))
	}
	var err error
	if e.ID, err = ident("id", w.ID, true); err != nil {
		return e, err
	}
	if e.CustomerID, err = ident("customer_id", w.CustomerID, true); err != nil {
		return e, err
	}
	if w.OccurredAt == nil {
		return e, bad("missing required field occurred_at")
	}
	if e.OccurredAt, err = parseTime("occurred_at", *w.OccurredAt); err != nil {
		return e, err
	}
	if e.OccurredAt.After(now.Add(MaxFuture)) {
		return e, bad("occurred_at %s is more than %s after the current time %s", *w.OccurredAt, MaxFuture, now.UTC().Format(time.RFC3339))
	}
	e.Type = topicType
	if w.Type != nil {
		if e.Type = ParseType(*w.Type); e.Type == Unknown {
			return e, bad("unknown type %q (want purchase, support_ticket, usage, customer or feedback)", *w.Type)
		}
	}
	switch e.Type {
	case Purchase:
		err = e.purchase(&w)
	case SupportTicket:
		err = e.ticket(&w)
	case Usage:
		err = e.usage(&w)
	case Customer:
		err = e.customer(&w)
	case Feedback:
		err = e.feedback(&w)
	default:
		err = bad("missing type and the topic has no default type")
	}
	return e, err
}

func (e *Event) purchase(w *wire) error {
	if w.Amount == nil {
		return bad("missing required field amount")
	}
	if err := number("amount", *w.Amount, 0, math.MaxFloat64); err != nil {
		return err
	}
	e.Amount = *w.Amount
	if w.Currency != nil {
		c := *w.Currency
		if len(c) != 3 || strings.ToUpper(c) != c || strings.IndexFunc(c, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
			return bad("currency %q is not an ISO 4217 code (three capital letters)", c)
		}
		e.Currency = c
	}
	var err error
	e.OrderID, err = ident("order_id", w.OrderID, false)
	return err
}

func (e *Event) ticket(w *wire) error {
	var err error
	if e.TicketID, err = ident("ticket_id", w.TicketID, true); err != nil {
		return err
	}
	if w.Status == nil {
		return bad("missing required field status")
	}
	if e.Status = TicketStatus(index(statusNames[:], *w.Status)); e.Status == 0 {
		return bad("status %q is not one of opened, reopened, solved, closed", *w.Status)
	}
	e.Priority = Normal
	if w.Priority != nil {
		if e.Priority = Priority(index(priorityNames[:], *w.Priority)); e.Priority == 0 {
			return bad("priority %q is not one of low, normal, high, urgent", *w.Priority)
		}
	}
	if w.CSAT != nil {
		if err := integer("csat", *w.CSAT, 1, 5); err != nil {
			return err
		}
		e.CSAT = int(*w.CSAT)
	}
	return nil
}

func (e *Event) usage(w *wire) error {
	e.Metric = "sessions"
	if w.Metric != nil {
		m := *w.Metric
		if m == "" || utf8.RuneCountInString(m) > MaxIDChars || hasControl(m) {
			return bad("metric must be 1–%d printable characters", MaxIDChars)
		}
		e.Metric = m
	}
	e.Value = 1
	if w.Value != nil {
		if err := number("value", *w.Value, 0, math.MaxFloat64); err != nil {
			return err
		}
		e.Value = *w.Value
	}
	return nil
}

func (e *Event) customer(w *wire) error {
	if w.Deleted != nil && *w.Deleted {
		e.Deleted = true
		return nil
	}
	if w.Tier != nil {
		t := *w.Tier
		if utf8.RuneCountInString(t) > 64 || hasControl(t) {
			return bad("tier must be at most 64 printable characters")
		}
		e.Tier, e.HasTier = t, true
	}
	if w.SignedUpAt != nil {
		t, err := parseTime("signed_up_at", *w.SignedUpAt)
		if err != nil {
			return err
		}
		e.SignedUpAt = t
	}
	if w.Attributes != nil {
		a := *w.Attributes
		if len(a) > MaxAttributes {
			return bad("attributes has %d entries, more than %d", len(a), MaxAttributes)
		}
		for k, v := range a {
			if k == "" || len(k) > MaxAttrKey || len(v) > MaxAttrValue || hasControl(k) {
				return bad("attribute %.40q: keys must be 1–%d printable bytes and values at most %d bytes", k, MaxAttrKey, MaxAttrValue)
			}
		}
		e.Attributes = a
	}
	return nil
}

func (e *Event) feedback(w *wire) error {
	if w.Kind == nil {
		return bad("missing required field kind")
	}
	if e.Kind = FeedbackKind(index(kindNames[:], *w.Kind)); e.Kind == 0 {
		return bad("kind %q is not one of nps, csat, ces", *w.Kind)
	}
	if w.Score == nil {
		return bad("missing required field score")
	}
	r := scoreRange[e.Kind]
	if err := integer("score", *w.Score, r[0], r[1]); err != nil {
		return err
	}
	e.Score = int(*w.Score)
	return nil
}

// scoreRange is the inclusive score range of each feedback kind.
var scoreRange = [...][2]float64{NPS: {0, 10}, CSAT: {1, 5}, CES: {1, 7}}

func ident(field string, s *string, required bool) (string, error) {
	if s == nil {
		if required {
			return "", bad("missing required field %s", field)
		}
		return "", nil
	}
	n := utf8.RuneCountInString(*s)
	if n == 0 && !required {
		return "", nil
	}
	if n == 0 || n > MaxIDChars {
		return "", bad("%s must be 1–%d characters, got %d", field, MaxIDChars, n)
	}
	if hasControl(*s) {
		return "", bad("%s contains control characters", field)
	}
	return *s, nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad("%s %.60q is not an RFC 3339 time", field, s)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

func number(field string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return bad("%s %g is out of range (≥ %g)", field, v, lo)
	}
	return nil
}

func integer(field string, v, lo, hi float64) error {
	if v != math.Trunc(v) || v < lo || v > hi {
		return bad("%s %g is not an integer from %g to %g", field, v, lo, hi)
	}
	return nil
}

func index(names []string, s string) int {
	for i, n := range names {
		if i > 0 && n == s {
			return i
		}
	}
	return 0
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// checkDepth rejects JSON nested deeper than MaxDepth before it is parsed.
func checkDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return bad("JSON nested deeper than %d levels", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s must be %s, got %s", te.Field, te.Type, te.Value)
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
