// Package alerts is the alert lifecycle of contract §4: the alert a rule
// transition produces, its stable id, and its CloudEvents form. The Kafka
// sink that publishes alerts lives in sink.go; the lifecycle itself does no I/O.
package alerts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	json "github.com/goccy/go-json"
)

// Status of an alert event.
type Status string

// The two alert statuses.
const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// ContentType is the content-type header of alert messages on the topic.
const ContentType = "application/cloudevents+json; charset=UTF-8"

// Alert is one edge of an episode: the rule started or stopped holding.
type Alert struct {
	AlertID    string    `json:"alert_id"`
	Rule       string    `json:"rule"`
	Severity   string    `json:"severity"`
	CustomerID string    `json:"customer_id"`
	Status     Status    `json:"status"`
	Time       time.Time `json:"-"`
	RiskScore  int       `json:"risk_score"`
	Reasons    []string  `json:"reasons"`
	Customer   Summary   `json:"customer"`
	// Holdout marks a customer of the control group: the alert goes to the
	// topic but no webhook notifies anyone, so that treated and held-out
	// retention can be compared.
	Holdout bool `json:"holdout"`
}

// Summary is the customer context carried in an alert.
type Summary struct {
	Tier           string     `json:"tier,omitempty"`
	Segment        string     `json:"segment,omitempty"`
	LastPurchaseAt *time.Time `json:"last_purchase_at,omitempty"`
	TotalSpend     float64    `json:"total_spend"`
	OpenTickets    int64      `json:"open_tickets"`
	NPS            *int64     `json:"nps,omitempty"`
}

// ID returns the alert_id of the episode of rule for customer that started
// at start (event time): the same inputs always give the same id, however
// often events are replayed.
func ID(rule, customer string, start time.Time) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(customer))
	h.Write([]byte{0})
	h.Write([]byte(start.UTC().Format(time.RFC3339Nano)))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// InHoldout reports whether customer belongs to the held-out share
// (0 to 1) of all customers. The choice is a stable hash of the id: the same
// customer is always in or out for the same share, on every instance, and
// raising the share only adds customers.
func InHoldout(customer string, share float64) bool {
	if share <= 0 {
		return false
	}
	sum := sha256.Sum256([]byte("holdout\x00" + customer))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11)/(1<<53) < share
}

// EventID is the CloudEvent id: "<alert_id>-firing" or "<alert_id>-resolved".
func (a *Alert) EventID() string { return a.AlertID + "-" + string(a.Status) }

// CloudEvent is the structured-mode CloudEvents 1.0 envelope of an alert.
type CloudEvent struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            *Alert `json:"data"`
}

// Envelope wraps a in its CloudEvent.
func (a *Alert) Envelope() CloudEvent {
	if a.Reasons == nil {
		a.Reasons = []string{}
	}
	return CloudEvent{
		SpecVersion:     "1.0",
		ID:              a.EventID(),
		Source:          "churnwatch",
		Type:            "churnwatch.alert." + string(a.Status),
		Subject:         a.CustomerID,
		Time:            a.Time.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            a,
	}
}

// MarshalCloudEvent returns the CloudEvent JSON of a.
func (a *Alert) MarshalCloudEvent() ([]byte, error) {
	return json.Marshal(a.Envelope())
}

// ParseCloudEvent reads back an alert written by MarshalCloudEvent.
func ParseCloudEvent(b []byte) (CloudEvent, error) {
	var ce CloudEvent
	if err := json.Unmarshal(b, &ce); err != nil {
		return ce, err
	}
	if ce.Data != nil {
		t, err := time.Parse(time.RFC3339Nano, ce.Time)
		if err != nil {
			return ce, err
		}
		ce.Data.Time = t
	}
	return ce, nil
}
