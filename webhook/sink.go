package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
)

// MaxSinkBody is the largest body a Sink accepts.
const MaxSinkBody = 1 << 20

// Sink is an http.Handler receiving Standard Webhooks deliveries: it
// verifies each POST against its secrets, answers 204 to a verified one
// (also to a duplicate, so the sender stops retrying) and 401 otherwise, and
// counts the message ids it saw. It is safe for concurrent use; set the
// fields before the first request.
type Sink struct {
	Secrets   []Secret
	Tolerance time.Duration    // allowed clock difference; default 5 minutes
	Now       func() time.Time // default time.Now
	// OnDelivery is called for each verified request, duplicates included
	// (Duplicate set). Calls do not overlap.
	OnDelivery func(Delivery)
	// OnReject, if set, is called for each refused request with the reason.
	// Calls do not overlap.
	OnReject func(r *http.Request, status int, reason error)

	mu   sync.Mutex
	seen map[string]int
	cbMu sync.Mutex // serializes the callbacks
}

// Delivery is one verified request.
type Delivery struct {
	ID        string    // webhook-id
	Timestamp time.Time // webhook-timestamp
	Body      []byte
	Duplicate bool               // the id was received before
	Event     *alerts.CloudEvent // nil when the body is not a CloudEvent with data
}

// ServeHTTP verifies and records one delivery.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, r, http.StatusMethodNotAllowed, errors.New("only POST is accepted"))
		return
	}
	if r.ContentLength > MaxSinkBody {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes, the limit is %d", r.ContentLength, MaxSinkBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSinkBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("body over the limit of %d bytes", MaxSinkBody))
			return
		}
		s.refuse(w, r, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err))
		return
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	tolerance := s.Tolerance
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	id, ts := r.Header.Get(HeaderID), r.Header.Get(HeaderTimestamp)
	if err := Verify(id, ts, r.Header.Get(HeaderSignature), body, now(), tolerance, s.Secrets...); err != nil {
		s.refuse(w, r, http.StatusUnauthorized, err)
		return
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // Verify parsed it
	d := Delivery{ID: id, Timestamp: time.Unix(sec, 0), Body: body}
	if ev, err := alerts.ParseCloudEvent(body); err == nil && ev.Data != nil {
		d.Event = &ev
	}

	s.mu.Lock()
	if s.seen == nil {
		s.seen = make(map[string]int)
	}
	s.seen[id]++
	d.Duplicate = s.seen[id] > 1
	s.mu.Unlock()

	if s.OnDelivery != nil {
		s.cbMu.Lock()
		s.OnDelivery(d)
		s.cbMu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sink) refuse(w http.ResponseWriter, r *http.Request, status int, reason error) {
	if s.OnReject != nil {
		s.cbMu.Lock()
		s.OnReject(r, status, reason)
		s.cbMu.Unlock()
	}
	http.Error(w, strings.TrimPrefix(reason.Error(), "webhook: "), status)
}

// Seen returns a copy of the ids received: webhook-id -> how many verified
// requests carried it.
func (s *Sink) Seen() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.seen))
	for id, n := range s.seen {
		out[id] = n
	}
	return out
}

// Line describes d on one line, e.g.
//
//	2026-11-25 12:00:01  ✓ signed  <webhook-id>  vip-no-purchase-180d c-42 firing
//
// with "(duplicate)" appended to a repeated id; the time is the
// webhook-timestamp in UTC.
func (d Delivery) Line() string {
	var b strings.Builder
	b.WriteString(d.Timestamp.UTC().Format("2006-01-02 15:04:05"))
	b.WriteString("  ✓ signed  ")
	b.WriteString(d.ID)
	b.WriteString("  ")
	if a := d.eventAlert(); a != nil {
		fmt.Fprintf(&b, "%s %s %s", a.Rule, a.CustomerID, a.Status)
	} else {
		fmt.Fprintf(&b, "%d bytes, not an alert", len(d.Body))
	}
	if d.Duplicate {
		b.WriteString("  (duplicate)")
	}
	return b.String()
}

func (d Delivery) eventAlert() *alerts.Alert {
	if d.Event == nil {
		return nil
	}
	return d.Event.Data
}
