package event

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-json/jsontext"
	json "github.com/goccy/go-json/v2"
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
	// MaxNumber bounds amount and usage value. No real purchase or usage
	// figure comes near it, and it keeps every sum the state keeps finite
	// (2^63 events of it are about 1e34): an infinite total would make the
	// customer's alerts impossible to encode as JSON and stop processing.
	MaxNumber = 1e15
)

// MinTime is the earliest occurred_at and signed_up_at accepted: the Unix
// epoch. Earlier times are out of range: no churn event predates it, and
// the usual serialisation of an unset time upstream (0001-01-01T00:00:00Z,
// Go's zero time) is what the state means by "never".
var MinTime = time.Unix(0, 0).UTC()

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
//
// Field names match exactly, as the contract spells them: "Customer_id" is
// an unknown field, ignored like any other, so the message then lacks
// customer_id. A name repeated in one object, at any depth, makes the
// message invalid JSON (RFC 7493 §2.3): JSON parsers disagree on which
// value wins, so no value is taken. Times are RFC 3339 as written
// (2006-01-02T15:04:05[.frac](Z|±hh:mm)), from MinTime on.
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
	if err := json.Unmarshal(data, &w); err != nil { // exact names, no duplicates
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
	if err := number("amount", *w.Amount, 0, MaxNumber); err != nil {
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
		if err := number("value", *w.Value, 0, MaxNumber); err != nil {
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
	if !rfc3339(s) {
		return time.Time{}, bad("%s %.60q is not an RFC 3339 time", field, s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad("%s %.60q is not an RFC 3339 time", field, s)
	}
	switch t = t.UTC(); {
	case t.Before(MinTime):
		return time.Time{}, bad("%s %.60s is before %s", field, s, MinTime.Format(time.RFC3339))
	case t.Year() > 9999: // 9999-12-31T23:00:00-01:00: no longer an RFC 3339 time in UTC
		return time.Time{}, bad("%s %.60s is after 9999-12-31T23:59:59Z", field, s)
	}
	return t.Truncate(time.Microsecond), nil
}

// rfc3339 reports whether s has the shape of an RFC 3339 date-time:
// yyyy-mm-ddThh:mm:ss, an optional fraction, then Z or ±hh:mm with an
// offset below 24 hours. time.Parse checks the ranges of the fields but
// also takes one-digit hours, a comma before the fraction and offsets of
// 24 hours and more, none of which RFC 3339 allows.
func rfc3339(s string) bool {
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(shape)+1 {
		return false
	}
	for i := range len(shape) {
		if c := s[i]; shape[i] == 'd' && (c < '0' || c > '9') || shape[i] != 'd' && c != shape[i] {
			return false
		}
	}
	rest := s[len(shape):]
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	if rest == "Z" {
		return true
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		digits(rest[1:3]) && digits(rest[4:6]) && rest[1:3] < "24" && rest[4:6] < "60"
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func number(field string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return bad("%s %g is out of range (%g to %g)", field, v, lo, hi)
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

// jsonReason words a JSON error for the churnwatch-error header: the field
// and what was wrong with its value, or the syntax error, at most 200 bytes
// of valid UTF-8.
func jsonReason(err error) string {
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	if errors.As(err, &se) && se.GoType != nil && !errors.As(se.Err, &syn) {
		got := kindName(se.JSONKind)
		field := fieldName(se.JSONPointer)
		switch {
		case field == "":
			return "want a JSON object, got " + got
		case se.JSONKind == '0' && se.Err != nil:
			return clip(fmt.Sprintf("field %s: number %.40s is out of range of %s", field, se.JSONValue, typeName(se.GoType)))
		default:
			return clip(fmt.Sprintf("field %s must be %s, got %s", field, typeName(se.GoType), got))
		}
	}
	return clip(strings.TrimPrefix(err.Error(), "jsontext: "))
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "another value"
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}

// fieldName is a JSON pointer as a dotted path (attributes.plan), quoted
// when a name in it is not plain.
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if tok == "" || len(tok) > 60 || strings.ContainsFunc(tok, func(r rune) bool {
			return r == '.' || r == '"' || !unicode.IsPrint(r) || unicode.IsSpace(r)
		}) {
			tok = strconv.QuoteToASCII(clipTo(tok, 60))
		}
		b.WriteString(tok)
	}
	return b.String()
}

func clip(s string) string { return clipTo(s, 200) }

// clipTo cuts s to at most n bytes without splitting a character.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
