package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ContentType of a delivered CloudEvent.
const ContentType = "application/cloudevents+json"

// Message is one delivery: its id (the CloudEvent id, the same for every
// attempt) and its rendered body.
type Message struct {
	ID          string
	ContentType string // default ContentType
	Body        []byte
}

// Outcome says what to do after an attempt.
type Outcome int

// Outcomes of an attempt.
const (
	Delivered  Outcome = iota // 2xx: never send this message to this endpoint again
	Retry                     // 5xx, 408, 429, timeouts, network errors
	DeadLetter                // any other 4xx: the receiver refuses this message
	Disable                   // 410 Gone: the receiver asks to stop all deliveries
)

func (o Outcome) String() string {
	return [...]string{"delivered", "retry", "dead-letter", "disable"}[o]
}

// Result of one attempt.
type Result struct {
	Outcome    Outcome
	Status     int           // HTTP status, 0 when there was no answer
	RetryAfter time.Duration // from a Retry-After header on 429/503, else 0
	Err        error
}

// Client sends attempts.
type Client struct {
	HTTP *http.Client // default: NewHTTPClient(false)
	Now  func() time.Time
}

// Deliver makes one signed attempt to deliver m to ep and classifies the
// answer.
func (c *Client) Deliver(ctx context.Context, ep *Endpoint, m Message) Result {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultClient
	}
	timeout := ep.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("endpoint %s did not answer within %s", ep.Name, timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{Outcome: DeadLetter, Err: fmt.Errorf("endpoint %s: %w", ep.Name, err)}
	}
	for k, v := range ep.Headers {
		req.Header.Set(k, v)
	}
	ct := m.ContentType
	if ct == "" {
		ct = ContentType
	}
	ts := now().Unix()
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "churnwatch")
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(m.ID, ts, m.Body, ep.Secrets...))
	resp, err := hc.Do(req)
	if err != nil {
		var refused *AddressError
		if errors.As(err, &refused) {
			// Not an outage: this endpoint resolves to an address churnwatch
			// was told not to reach; retrying would not change that.
			return Result{Outcome: DeadLetter, Err: fmt.Errorf("endpoint %s (%s): %w", ep.Name, ep.Host(), refused)}
		}
		if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.DeadlineExceeded) {
			err = cause
		} else if ue, ok := err.(*url.Error); ok {
			// url.Error quotes the whole URL, and some URLs carry a secret.
			err = fmt.Errorf("endpoint %s (%s): %w", ep.Name, ep.Host(), ue.Err)
		}
		return Result{Outcome: Retry, Err: err}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // the body is not needed
	resp.Body.Close()
	r := Result{Status: resp.StatusCode}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		r.Outcome = Delivered
	case s == http.StatusGone:
		r.Outcome = Disable
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		r.Outcome = Retry
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now())
	case s == http.StatusRequestTimeout || s >= 500:
		r.Outcome = Retry
	default:
		r.Outcome = DeadLetter
	}
	if r.Outcome != Delivered {
		r.Err = fmt.Errorf("endpoint %s answered %d", ep.Name, resp.StatusCode)
	}
	return r
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// schedule is the delay before each retry: immediately, 5 s, 5 min, 30 min,
// 2 h, 5 h, 10 h, 10 h (about 28 hours in all).
var schedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Attempts is how many attempts a message gets before it is dead-lettered.
var Attempts = len(schedule)

// NextDelay returns the delay before attempt n (0-based) with ±10 % jitter
// (so that the schedule always spans more than 24 hours),
// at least Retry-After when the endpoint asked for it; ok is false when the
// schedule is exhausted.
func NextDelay(n int, after time.Duration, r *rand.Rand) (d time.Duration, ok bool) {
	if n < 0 || n >= len(schedule) {
		return 0, false
	}
	d = schedule[n]
	if d > 0 && r != nil {
		d = time.Duration(float64(d) * (0.9 + 0.2*r.Float64()))
	}
	return max(d, after), true
}
