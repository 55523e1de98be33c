package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/webhook"
)

// Store keeps the delivery state in Redis: per alert event the decision
// taken (notify or why not), the contact-cap history of each customer, the
// suppressed notifications, per endpoint the pending jobs ordered by due
// time and the dead letters, the silences and the disabled endpoints. Every
// key carries the hash tag {wh}, so the multi-key scripts run on Redis
// Cluster too (all delivery keys live in one slot; their volume is that of
// alerts, not of events).
type Store struct {
	rdb redis.UniversalClient
	p   string // "cw:{wh}"
	// DecisionTTL is how long the decision on an alert event is kept, and
	// so how long a replay of the alert topic sends nothing twice.
	DecisionTTL time.Duration
	// MaxSuppressed bounds the suppression record (oldest dropped first).
	MaxSuppressed int
}

// NewStore returns a Store with keys under prefix (default "cw").
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "cw"
	}
	return &Store{rdb: rdb, p: prefix + ":{wh}", DecisionTTL: 400 * 24 * time.Hour, MaxSuppressed: 100000}
}

func (s *Store) seenKey(eventID string) string    { return s.p + ":seen:" + eventID }
func (s *Store) capKey(customer string) string    { return s.p + ":cap:" + customer }
func (s *Store) suppKey() string                  { return s.p + ":supp" }
func (s *Store) suppIdx() string                  { return s.p + ":supp:idx" }
func (s *Store) jobKey(ep, eventID string) string { return s.p + ":job:" + ep + ":" + eventID }
func (s *Store) dueKey(ep string) string          { return s.p + ":due:" + ep }
func (s *Store) dlqKey(ep string) string          { return s.p + ":dlq:" + ep }
func (s *Store) silencesKey() string              { return s.p + ":silences" }
func (s *Store) disabledKey() string              { return s.p + ":disabled" }

// Decision on an alert event.
type Decision struct {
	Notify    bool
	Duplicate bool   // decided before (a redelivered alert): nothing was done now
	Reason    string // why not notified: holdout, silenced, cap-rule, cap-customer, firing-not-notified
}

// Notice is an alert event offered for notification.
type Notice struct {
	EventID, AlertID, Rule, Customer, Status string
	Body                                     []byte // the CloudEvent JSON
	Absence                                  bool   // the rule fires on the passage of time
	// Reason and Detail, when set, suppress the notice (holdout, silenced).
	Reason, Detail string
}

// accept decides atomically whether an alert event notifies: a decision
// already taken stands; a preset reason (holdout, silence) suppresses; a
// resolved event follows its firing; a firing event passes the contact caps
// or is suppressed by them. A notified event becomes one job per endpoint;
// a suppressed one is recorded.
var accept = redis.NewScript(`
local seen = redis.call('GET', KEYS[1])
if seen then return {'dup', seen} end
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local perRule, perCust = tonumber(ARGV[3]), tonumber(ARGV[4])
local status, rule, id = ARGV[5], ARGV[6], ARGV[7]
local reason, detail = ARGV[8], ARGV[9]
if reason == '' and status == 'resolved' then
  local f = redis.call('GET', KEYS[5])
  if f and f ~= 'notify' then
    reason, detail = 'firing-not-notified', 'its firing was not notified (' .. f .. ')'
  end
elseif reason == '' and status == 'firing' and (perRule > 0 or perCust > 0) then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local members = redis.call('ZRANGE', KEYS[2], 0, -1)
  local prefix, n = rule .. '|', 0
  for _, m in ipairs(members) do
    if string.sub(m, 1, #prefix) == prefix then n = n + 1 end
  end
  if perRule > 0 and n >= perRule then
    reason, detail = 'cap-rule', 'rule notified ' .. n .. ' time(s) for this customer within the cap window'
  elseif perCust > 0 and #members >= perCust then
    reason, detail = 'cap-customer', 'customer notified ' .. #members .. ' time(s) within the cap window'
  else
    redis.call('ZADD', KEYS[2], now, prefix .. id)
    redis.call('PEXPIRE', KEYS[2], window)
  end
end
if reason ~= '' then
  redis.call('SET', KEYS[1], reason, 'EX', ARGV[10])
  redis.call('HSET', KEYS[3], id, cjson.encode({event_id = id, alert_id = ARGV[13], rule = rule,
    customer_id = ARGV[12], status = status, reason = reason, detail = detail, at = ARGV[14]}))
  redis.call('ZADD', KEYS[4], now, id)
  local extra = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[15])
  if extra > 0 then
    local old = redis.call('ZPOPMIN', KEYS[4], extra)
    for i = 1, #old, 2 do redis.call('HDEL', KEYS[3], old[i]) end
  end
  return {'suppressed', reason}
end
redis.call('SET', KEYS[1], 'notify', 'EX', ARGV[10])
for i = 6, #KEYS, 2 do
  redis.call('HSET', KEYS[i], 'body', ARGV[11], 'attempt', 0, 'created', now, 'rule', rule,
    'customer', ARGV[12], 'status', status, 'absence', ARGV[16])
  redis.call('ZADD', KEYS[i + 1], now, id)
end
return {'notify', ''}
`)

// Accept records the decision on n for endpoints (those whose filter
// matched) at now, under the contact caps.
func (s *Store) Accept(ctx context.Context, n *Notice, endpoints []string, caps webhook.Caps, now time.Time) (Decision, error) {
	firing := n.AlertID + "-firing"
	keys := []string{s.seenKey(n.EventID), s.capKey(n.Customer), s.suppKey(), s.suppIdx(), s.seenKey(firing)}
	for _, ep := range endpoints {
		keys = append(keys, s.jobKey(ep, n.EventID), s.dueKey(ep))
	}
	absence := "0"
	if n.Absence {
		absence = "1"
	}
	res, err := accept.Run(ctx, s.rdb, keys,
		now.UnixMilli(), caps.Window.Milliseconds(), caps.PerRule, caps.PerCustomer,
		n.Status, n.Rule, n.EventID, n.Reason, n.Detail, int64(s.DecisionTTL/time.Second),
		n.Body, n.Customer, n.AlertID, now.UTC().Format(time.RFC3339Nano), s.MaxSuppressed, absence).StringSlice()
	if err != nil {
		return Decision{}, fmt.Errorf("record the notification decision of %s: %w", n.EventID, err)
	}
	switch res[0] {
	case "dup":
		return Decision{Duplicate: true, Notify: res[1] == "notify", Reason: reasonOf(res[1])}, nil
	case "suppressed":
		return Decision{Reason: res[1]}, nil
	}
	return Decision{Notify: true}, nil
}

func reasonOf(decision string) string {
	if decision == "notify" {
		return ""
	}
	return decision
}

// Suppression is a notification that was not sent, and why.
type Suppression struct {
	EventID    string `json:"event_id"`
	AlertID    string `json:"alert_id"`
	Rule       string `json:"rule"`
	CustomerID string `json:"customer_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
	At         string `json:"at"`
}

// suppress records a job suppressed after it was queued (a silence set
// while it waited) and removes the job.
func (s *Store) suppress(ctx context.Context, ep string, j *Job, reason, detail string, now time.Time) error {
	rec, err := json.Marshal(Suppression{EventID: j.EventID, AlertID: j.alertID(), Rule: j.Rule, CustomerID: j.Customer,
		Status: j.Status, Reason: reason, Detail: detail + " (endpoint " + ep + ")", At: now.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.suppKey(), j.EventID, rec)
		p.ZAdd(ctx, s.suppIdx(), redis.Z{Score: float64(now.UnixMilli()), Member: j.EventID})
		p.Del(ctx, s.jobKey(ep, j.EventID))
		p.ZRem(ctx, s.dueKey(ep), j.EventID)
		return nil
	})
	return err
}

// Suppressed lists recorded suppressions, newest first.
func (s *Store) Suppressed(ctx context.Context, limit int) ([]Suppression, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.suppIdx(), 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		return []Suppression{}, err
	}
	vals, err := s.rdb.HMGet(ctx, s.suppKey(), ids...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Suppression, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var r Suppression
		if err := json.Unmarshal([]byte(str), &r); err != nil {
			return nil, fmt.Errorf("suppression record: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Job is a pending or dead delivery of one alert event to one endpoint.
type Job struct {
	Endpoint   string     `json:"endpoint"`
	EventID    string     `json:"event_id"`
	Rule       string     `json:"rule"`
	Customer   string     `json:"customer_id"`
	Status     string     `json:"status"`
	Attempt    int        `json:"attempts"`
	Absence    bool       `json:"-"`
	Created    time.Time  `json:"created_at"`
	LastStatus int        `json:"last_status,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	DeadReason string     `json:"dead_reason,omitempty"`
	DeadAt     *time.Time `json:"dead_at,omitempty"`
	Body       []byte     `json:"-"`
}

func (j *Job) alertID() string {
	if i := len(j.EventID) - len(j.Status) - 1; i > 0 {
		return j.EventID[:i]
	}
	return j.EventID
}

func jobFrom(ep, id string, h map[string]string) *Job {
	j := &Job{Endpoint: ep, EventID: id, Rule: h["rule"], Customer: h["customer"], Status: h["status"],
		Absence: h["absence"] == "1", LastError: h["last_error"], DeadReason: h["dead_reason"], Body: []byte(h["body"])}
	j.Attempt, _ = strconv.Atoi(h["attempt"])
	j.LastStatus, _ = strconv.Atoi(h["last_status"])
	ms := func(k string) time.Time {
		v, _ := strconv.ParseInt(h[k], 10, 64)
		return time.UnixMilli(v).UTC()
	}
	j.Created = ms("created")
	if h["dead_at"] != "" {
		t := ms("dead_at")
		j.DeadAt = &t
	}
	return j
}

// claim takes up to limit jobs of ep that are due at now and holds them for
// lease (another claimer skips them until then; a crash mid-attempt makes
// them due again when the lease ends).
var claim = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local till = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], till, id) end
return ids
`)

// Claim returns the due jobs of ep.
func (s *Store) Claim(ctx context.Context, ep string, now time.Time, lease time.Duration, limit int) ([]*Job, error) {
	ids, err := claim.Run(ctx, s.rdb, []string{s.dueKey(ep)}, now.UnixMilli(), lease.Milliseconds(), limit).StringSlice()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.jobs(ctx, ep, ids, true)
}

func (s *Store) jobs(ctx context.Context, ep string, ids []string, dropMissing bool) ([]*Job, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.jobKey(ep, id))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*Job, 0, len(ids))
	for i, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			if dropMissing {
				s.rdb.ZRem(ctx, s.dueKey(ep), ids[i])
			}
			continue
		}
		out = append(out, jobFrom(ep, ids[i], h))
	}
	return out, nil
}

// Delivered removes a job that got a 2xx: it is never sent again.
func (s *Store) Delivered(ctx context.Context, j *Job) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.dueKey(j.Endpoint), j.EventID)
		p.Del(ctx, s.jobKey(j.Endpoint, j.EventID))
		return nil
	})
	return err
}

// Retry records a failed attempt and when to try again. counted is false
// for a wait that is not an attempt (stall guard, disabled endpoint).
func (s *Store) Retry(ctx context.Context, j *Job, at time.Time, counted bool) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if counted {
			p.HSet(ctx, s.jobKey(j.Endpoint, j.EventID), "attempt", j.Attempt, "last_status", j.LastStatus, "last_error", j.LastError)
		}
		p.ZAdd(ctx, s.dueKey(j.Endpoint), redis.Z{Score: float64(at.UnixMilli()), Member: j.EventID})
		return nil
	})
	return err
}

// Dead moves a job to its endpoint's dead letters, kept until replayed.
func (s *Store) Dead(ctx context.Context, j *Job, now time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.jobKey(j.Endpoint, j.EventID), "attempt", j.Attempt, "last_status", j.LastStatus,
			"last_error", j.LastError, "dead_reason", j.DeadReason, "dead_at", now.UnixMilli())
		p.ZRem(ctx, s.dueKey(j.Endpoint), j.EventID)
		p.ZAdd(ctx, s.dlqKey(j.Endpoint), redis.Z{Score: float64(now.UnixMilli()), Member: j.EventID})
		return nil
	})
	return err
}

// DeadLetters lists the dead letters of ep, newest first.
func (s *Store) DeadLetters(ctx context.Context, ep string, limit int) ([]*Job, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.dlqKey(ep), 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.jobs(ctx, ep, ids, false)
}

// Replay makes dead letters of ep due again at now with a fresh schedule:
// the given event ids, or all when ids is empty. It returns how many.
func (s *Store) Replay(ctx context.Context, ep string, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		all, err := s.rdb.ZRange(ctx, s.dlqKey(ep), 0, -1).Result()
		if err != nil {
			return 0, err
		}
		ids = all
	}
	n := 0
	for _, id := range ids {
		removed, err := s.rdb.ZRem(ctx, s.dlqKey(ep), id).Result()
		if err != nil {
			return n, err
		}
		if removed == 0 {
			continue
		}
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.jobKey(ep, id), "attempt", 0)
			p.HDel(ctx, s.jobKey(ep, id), "dead_reason", "dead_at")
			p.ZAdd(ctx, s.dueKey(ep), redis.Z{Score: float64(now.UnixMilli()), Member: id})
			return nil
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Counts returns how many jobs of ep are pending and dead.
func (s *Store) Counts(ctx context.Context, ep string) (pending, dead int64, err error) {
	var pc, dc *redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		pc = p.ZCard(ctx, s.dueKey(ep))
		dc = p.ZCard(ctx, s.dlqKey(ep))
		return nil
	})
	return pc.Val(), dc.Val(), err
}

// Disable stops deliveries to ep (it answered 410 Gone); its jobs wait.
func (s *Store) Disable(ctx context.Context, ep, reason string) error {
	return s.rdb.HSet(ctx, s.disabledKey(), ep, reason).Err()
}

// Enable resumes deliveries to ep; it reports whether ep was disabled.
func (s *Store) Enable(ctx context.Context, ep string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.disabledKey(), ep).Result()
	return n > 0, err
}

// Disabled returns the disabled endpoints with the reason.
func (s *Store) Disabled(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, s.disabledKey()).Result()
}

// AddSilence stores a new silence and returns it with its id.
func (s *Store) AddSilence(ctx context.Context, sl webhook.Silence, now time.Time) (webhook.Silence, error) {
	if err := sl.Validate(now); err != nil {
		return sl, err
	}
	var b [8]byte
	rand.Read(b[:])
	sl.ID = hex.EncodeToString(b[:])
	sl.CreatedAt = now.UTC()
	sl.Until = sl.Until.UTC()
	v, err := json.Marshal(sl)
	if err != nil {
		return sl, err
	}
	return sl, s.rdb.HSet(ctx, s.silencesKey(), sl.ID, v).Err()
}

// Silences returns every stored silence, active or expired.
func (s *Store) Silences(ctx context.Context) ([]webhook.Silence, error) {
	m, err := s.rdb.HGetAll(ctx, s.silencesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	out := make([]webhook.Silence, 0, len(m))
	for _, v := range m {
		var sl webhook.Silence
		if err := json.Unmarshal([]byte(v), &sl); err != nil {
			return nil, fmt.Errorf("silence record: %w", err)
		}
		out = append(out, sl)
	}
	return out, nil
}

// ExpireSilence ends a silence at now.
func (s *Store) ExpireSilence(ctx context.Context, id string, now time.Time) (webhook.Silence, error) {
	var sl webhook.Silence
	v, err := s.rdb.HGet(ctx, s.silencesKey(), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return sl, fmt.Errorf("silence %q: %w", id, webhook.ErrNotFound)
	}
	if err != nil {
		return sl, err
	}
	if err := json.Unmarshal(v, &sl); err != nil {
		return sl, err
	}
	if sl.Until.After(now) {
		sl.Until = now.UTC()
	}
	b, err := json.Marshal(sl)
	if err != nil {
		return sl, err
	}
	return sl, s.rdb.HSet(ctx, s.silencesKey(), id, b).Err()
}
