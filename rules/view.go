package rules

import "time"

// View is everything a rule condition can read about one customer at one
// instant of event time. The engine builds it from the stored state; rules
// never see the storage form. In CEL the fields are top-level variables:
// now, customer, purchases, tickets, usage, feedback.
type View struct {
	Now       time.Time
	Customer  Customer
	Purchases Purchases
	Tickets   Tickets
	Usage     Usage
	Feedback  Feedback
	// LastSeen is the occurred_at of the latest applied event of each type
	// (purchase, support_ticket, usage, customer, feedback); absent types
	// have no entry.
	LastSeen map[string]time.Time `json:"last_seen"`
}

// Customer is the profile part of the view.
type Customer struct {
	ID         string            `cel:"id" json:"id"`
	Tier       string            `cel:"tier" json:"tier"`
	SignedUpAt time.Time         `cel:"signed_up_at" json:"signed_up_at,omitzero"` // zero when unknown
	HasSignup  bool              `cel:"has_signup" json:"has_signup"`
	FirstSeen  time.Time         `cel:"first_seen" json:"first_seen,omitzero"`
	Segment    string            `cel:"segment" json:"segment"` // "A", "B" or "C"
	Attributes map[string]string `cel:"attributes" json:"attributes"`
}

// Purchases summarises the customer's purchases up to Now.
type Purchases struct {
	Count    int64         `cel:"count" json:"count"`
	Total    float64       `cel:"total" json:"total"`
	First    time.Time     `cel:"first" json:"first,omitzero"` // zero when Count == 0
	Last     time.Time     `cel:"last" json:"last,omitzero"`   // zero when Count == 0
	Spend30  float64       `cel:"spend_30d" json:"spend_30d"`
	Spend90  float64       `cel:"spend_90d" json:"spend_90d"`
	Spend365 float64       `cel:"spend_365d" json:"spend_365d"`
	Interval time.Duration `cel:"interval" json:"interval"` // mean time between purchases; 0 below 2 purchases
}

// Tickets summarises support tickets up to Now.
type Tickets struct {
	Open       int64     `cel:"open" json:"open"`
	Opened7    int64     `cel:"opened_7d" json:"opened_7d"`
	Opened30   int64     `cel:"opened_30d" json:"opened_30d"`
	Last       time.Time `cel:"last" json:"last,omitzero"`      // zero when none
	LatestCSAT int64     `cel:"latest_csat" json:"latest_csat"` // 0 when none
}

// Usage holds usage totals. The trailing 7 days are the current UTC day and
// the six before it; the prior 28 days are the four weeks before those.
type Usage struct {
	Last7       float64   `cel:"last_7d" json:"last_7d"`
	Prior28     float64   `cel:"prior_28d" json:"prior_28d"`
	WeeklyAvg28 float64   `cel:"weekly_avg_28d" json:"weekly_avg_28d"` // Prior28 / 4
	Last        time.Time `cel:"last" json:"last,omitzero"`            // zero when none
	// Metrics holds the same figures per metric name.
	Metrics map[string]MetricUsage `cel:"metrics" json:"metrics"`
}

// MetricUsage is Usage for one metric.
type MetricUsage struct {
	Last7       float64 `cel:"last_7d" json:"last_7d"`
	Prior28     float64 `cel:"prior_28d" json:"prior_28d"`
	WeeklyAvg28 float64 `cel:"weekly_avg_28d" json:"weekly_avg_28d"`
}

// Feedback holds the latest feedback scores; -1 means none was given.
type Feedback struct {
	NPS         int64  `cel:"nps" json:"nps"`
	NPSCategory string `cel:"nps_category" json:"nps_category"` // promoter, passive, detractor or ""
	CSAT        int64  `cel:"csat" json:"csat"`
	CES         int64  `cel:"ces" json:"ces"`
}
