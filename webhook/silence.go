package webhook

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Silence stops notifications for a customer, a rule, or one rule of one
// customer until a time: a do-not-contact request, a save play already
// running. What it stops is recorded as suppressed.
type Silence struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id,omitempty"` // empty: every customer
	Rule       string    `json:"rule,omitempty"`        // empty: every rule
	Until      time.Time `json:"until"`
	Comment    string    `json:"comment"`
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Errors a caller can tell apart (the admin API answers 400 and 404).
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
)

// Validate reports a silence that cannot be stored; the error wraps
// ErrInvalid.
func (s *Silence) Validate(now time.Time) error {
	var errs []error
	if s.CustomerID == "" && s.Rule == "" {
		errs = append(errs, errors.New("customer_id or rule (or both) is required: a silence of everything is not allowed"))
	}
	if !s.Until.After(now) {
		errs = append(errs, errors.New("until must be a time in the future (RFC 3339)"))
	}
	if s.Comment == "" {
		errs = append(errs, errors.New("comment is required: say why, e.g. \"do not contact: legal hold\""))
	}
	if utf8.RuneCountInString(s.Comment) > 1000 || len(s.CustomerID) > 200 || len(s.Rule) > 63 || len(s.CreatedBy) > 200 {
		errs = append(errs, errors.New("comment is limited to 1000 characters, customer_id and created_by to 200, rule to 63"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w silence: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// Active reports whether the silence holds at now.
func (s *Silence) Active(now time.Time) bool { return now.Before(s.Until) }

// Matches reports whether the silence covers customer and rule.
func (s *Silence) Matches(customer, rule string) bool {
	return (s.CustomerID == "" || s.CustomerID == customer) && (s.Rule == "" || s.Rule == rule)
}

// Silenced returns the first silence of list active at now that covers
// customer and rule, or nil.
func Silenced(list []Silence, customer, rule string, now time.Time) *Silence {
	for i := range list {
		if list[i].Active(now) && list[i].Matches(customer, rule) {
			return &list[i]
		}
	}
	return nil
}
