package delivery

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/webhook"
)

// These methods serve the admin API (admin.Deliveries) and the
// `churnwatch webhooks` command.

// Ready reports whether Redis answers.
func (d *Dispatcher) Ready(ctx context.Context) error {
	if err := d.store.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Silences returns the silences, newest end first; expired ones only when all.
func (d *Dispatcher) Silences(ctx context.Context, all bool) ([]webhook.Silence, error) {
	list, err := d.store.Silences(ctx)
	if err != nil {
		return nil, err
	}
	now := d.cfg.Now()
	if !all {
		list = slices.DeleteFunc(list, func(s webhook.Silence) bool { return !s.Active(now) })
	}
	slices.SortFunc(list, func(a, b webhook.Silence) int { return b.Until.Compare(a.Until) })
	return list, nil
}

// AddSilence stores a silence.
func (d *Dispatcher) AddSilence(ctx context.Context, s webhook.Silence) (webhook.Silence, error) {
	return d.store.AddSilence(ctx, s, d.cfg.Now())
}

// ExpireSilence ends a silence now.
func (d *Dispatcher) ExpireSilence(ctx context.Context, id string) (webhook.Silence, error) {
	return d.store.ExpireSilence(ctx, id, d.cfg.Now())
}

// EndpointStatus describes one endpoint.
type EndpointStatus struct {
	Name     string         `json:"name"`
	Host     string         `json:"host"`
	Template string         `json:"template"`
	Filter   webhook.Filter `json:"filter"`
	Disabled string         `json:"disabled,omitempty"` // why, when disabled
	Pending  int64          `json:"pending"`
	Dead     int64          `json:"dead_letters"`
}

// Endpoints describes the configured endpoints.
func (d *Dispatcher) Endpoints(ctx context.Context) (any, error) {
	off, err := d.store.Disabled(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]EndpointStatus, 0, len(d.cfg.Webhooks.Endpoints))
	for _, ep := range d.cfg.Webhooks.Endpoints {
		p, dead, err := d.store.Counts(ctx, ep.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, EndpointStatus{Name: ep.Name, Host: ep.Host(), Template: ep.Template.Kind(), Filter: ep.Filter,
			Disabled: off[ep.Name], Pending: p, Dead: dead})
	}
	return out, nil
}

func (d *Dispatcher) endpoint(name string) (*webhook.Endpoint, error) {
	for _, ep := range d.cfg.Webhooks.Endpoints {
		if ep.Name == name {
			return ep, nil
		}
	}
	names := make([]string, len(d.cfg.Webhooks.Endpoints))
	for i, ep := range d.cfg.Webhooks.Endpoints {
		names[i] = ep.Name
	}
	return nil, fmt.Errorf("endpoint %q: %w (configured: %s)", name, webhook.ErrNotFound, strings.Join(names, ", "))
}

// endpoints returns the named endpoint, or all for "".
func (d *Dispatcher) endpoints(name string) ([]*webhook.Endpoint, error) {
	if name == "" {
		return d.cfg.Webhooks.Endpoints, nil
	}
	ep, err := d.endpoint(name)
	if err != nil {
		return nil, err
	}
	return []*webhook.Endpoint{ep}, nil
}

// Enable resumes deliveries to an endpoint disabled by a 410.
func (d *Dispatcher) Enable(ctx context.Context, name string) error {
	if _, err := d.endpoint(name); err != nil {
		return err
	}
	_, err := d.store.Enable(ctx, name)
	return err
}

// DeadLetters lists the dead letters of one endpoint or all, newest first.
func (d *Dispatcher) DeadLetters(ctx context.Context, name string, limit int) (any, error) {
	return d.deadLetters(ctx, name, limit)
}

func (d *Dispatcher) deadLetters(ctx context.Context, name string, limit int) ([]*Job, error) {
	eps, err := d.endpoints(name)
	if err != nil {
		return nil, err
	}
	out := []*Job{}
	for _, ep := range eps {
		jobs, err := d.store.DeadLetters(ctx, ep.Name, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, jobs...)
	}
	slices.SortStableFunc(out, func(a, b *Job) int { return deadAt(b).Compare(deadAt(a)) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func deadAt(j *Job) time.Time {
	if j.DeadAt == nil {
		return time.Time{}
	}
	return *j.DeadAt
}

// Replay makes dead letters due again with a fresh schedule.
func (d *Dispatcher) Replay(ctx context.Context, name string, ids []string) (int, error) {
	eps, err := d.endpoints(name)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, ep := range eps {
		n, err := d.store.Replay(ctx, ep.Name, ids, d.cfg.Now())
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Suppressed lists the notifications not sent, newest first.
func (d *Dispatcher) Suppressed(ctx context.Context, limit int) (any, error) {
	return d.store.Suppressed(ctx, limit)
}

// TimeDriven reports, for the stall guard, the rules of set that can start
// to hold because time passed (an absence clause or a time window).
func TimeDriven(set *rules.Set) func(rule string) bool {
	return func(id string) bool {
		r := set.Get(id)
		return r != nil && (r.Absent != nil || r.ReadsTime)
	}
}

// MetricsHandler serves the dispatcher's metrics.
func (d *Dispatcher) MetricsHandler() http.Handler {
	return d.cfg.Metrics.Handler()
}
