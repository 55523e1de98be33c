package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Endpoint is one receiver of deliveries.
type Endpoint struct {
	Name    string
	URL     string
	Secrets []Secret          // the first signs; all sign during a rotation
	Headers map[string]string // extra request headers, e.g. Authorization for a CRM API
	// Template renders the body; nil sends the CloudEvent itself.
	Template *Template
	Filter   Filter
	Timeout  time.Duration // per attempt; default 10s
	// RateLimit caps attempts per second to this endpoint (0: no cap);
	// Burst is how many may go at once (default: RateLimit rounded up).
	RateLimit float64
	Burst     int
}

// Host is the endpoint's scheme and host, safe to log: URLs of some
// receivers (Slack incoming webhooks) carry a secret in their path.
func (ep *Endpoint) Host() string {
	u, err := url.Parse(ep.URL)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// Filter selects the alerts an endpoint receives; an empty list matches
// everything.
type Filter struct {
	Rules      []string `yaml:"rules" json:"rules,omitempty"`
	Severities []string `yaml:"severities" json:"severities,omitempty"`
	Statuses   []string `yaml:"statuses" json:"statuses,omitempty"`
}

// Match reports whether an alert of rule, severity and status passes.
func (f *Filter) Match(rule, severity, status string) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(f.Rules, rule) && in(f.Severities, severity) && in(f.Statuses, status)
}

// Caps limit how often a customer's account team is asked to act: at most
// PerRule firing notifications per rule per customer and PerCustomer
// across rules within Window. Zero disables a cap.
type Caps struct {
	Window      time.Duration
	PerRule     int
	PerCustomer int
}

// DefaultCaps are one notification per rule and two per customer in 7 days.
var DefaultCaps = Caps{Window: 7 * 24 * time.Hour, PerRule: 1, PerCustomer: 2}

// Config is a webhooks file.
type Config struct {
	Endpoints []*Endpoint
	Caps      Caps
	// StallAfter: while the event-time watermark is this far behind the
	// wall clock, notifications of rules that fire on absence wait.
	// Default 1 hour; negative disables the guard.
	StallAfter time.Duration
	// DenyPrivate refuses to connect to loopback, private, link-local,
	// unspecified and multicast addresses, checked on the address dialled
	// (after name resolution), so a name that resolves to one is refused.
	DenyPrivate bool
}

// file is the YAML form.
type file struct {
	Endpoints []struct {
		Name         string            `yaml:"name"`
		URL          string            `yaml:"url"`
		Secrets      []string          `yaml:"secrets"`
		Secret       string            `yaml:"secret"`
		Headers      map[string]string `yaml:"headers"`
		Template     string            `yaml:"template"`
		TemplateText string            `yaml:"template_text"`
		Filter       Filter            `yaml:"filter"`
		Timeout      string            `yaml:"timeout"`
		RateLimit    float64           `yaml:"rate_limit"`
		Burst        int               `yaml:"burst"`
	} `yaml:"endpoints"`
	ContactCaps *struct {
		Window      string `yaml:"window"`
		PerRule     *int   `yaml:"per_rule"`
		PerCustomer *int   `yaml:"per_customer"`
	} `yaml:"contact_caps"`
	StallAfter  string `yaml:"stall_after"`
	DenyPrivate bool   `yaml:"deny_private_addresses"`
}

var (
	envRef    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	namePat   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	severity  = []string{"info", "low", "medium", "high", "critical"}
	statuses  = []string{"firing", "resolved"}
	reserved  = []string{"content-type", HeaderID, HeaderTimestamp, HeaderSignature}
	errNoFile = errors.New("no endpoints")
)

// LoadConfig parses a webhooks file. Secrets, URLs and header values may
// name environment variables as ${NAME}, looked up with lookup (os.LookupEnv
// in production), so that secrets stay out of the file. Every problem is
// reported with the endpoint it concerns.
func LoadConfig(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(name+": "+format, args...)) }
	expand := func(where, s string) string {
		return envRef.ReplaceAllStringFunc(s, func(ref string) string {
			v, ok := lookup(ref[2 : len(ref)-1])
			if !ok {
				fail("%s: environment variable %s is not set", where, ref[2:len(ref)-1])
			}
			return v
		})
	}
	cfg := &Config{Caps: DefaultCaps, StallAfter: time.Hour, DenyPrivate: f.DenyPrivate}
	seen := map[string]bool{}
	for i, e := range f.Endpoints {
		where := fmt.Sprintf("endpoints[%d]", i)
		if e.Name != "" {
			where += " (" + e.Name + ")"
		}
		ep := &Endpoint{Name: e.Name, Filter: e.Filter, RateLimit: e.RateLimit, Burst: e.Burst, Timeout: 10 * time.Second}
		switch {
		case !namePat.MatchString(e.Name):
			fail("%s: name must be 1–63 letters, digits, '.', '_' or '-'", where)
		case seen[e.Name]:
			fail("%s: name used twice", where)
		}
		seen[e.Name] = true
		ep.URL = expand(where+": url", e.URL)
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail("%s: url must be an http:// or https:// URL", where)
		} else if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && f.DenyPrivate && nonPublic(ip) != "" {
			fail("%s: url: %s is a %s address, refused by deny_private_addresses", where, ip, nonPublic(ip))
		}
		raw := e.Secrets
		if e.Secret != "" {
			raw = append([]string{e.Secret}, raw...)
		}
		if len(raw) == 0 {
			fail("%s: secrets: at least one whsec_ secret is required (e.g. secrets: [\"${CRM_WEBHOOK_SECRET}\"])", where)
		}
		for j, s := range raw {
			sec, err := ParseSecret(expand(fmt.Sprintf("%s: secrets[%d]", where, j), s))
			if err != nil {
				fail("%s: secrets[%d]: %v", where, j, err)
			}
			ep.Secrets = append(ep.Secrets, sec)
		}
		if len(e.Headers) > 0 {
			ep.Headers = make(map[string]string, len(e.Headers))
		}
		for k, v := range e.Headers {
			if slices.Contains(reserved, strings.ToLower(k)) {
				fail("%s: headers: %s is set by churnwatch", where, k)
			}
			ep.Headers[k] = expand(where+": headers."+k, v)
		}
		t, err := ParseTemplate(e.Template, e.TemplateText)
		if err != nil {
			fail("%s: template: %v", where, err)
		}
		ep.Template = t
		if e.Timeout != "" {
			d, err := time.ParseDuration(e.Timeout)
			if err != nil || d < time.Millisecond || d > 5*time.Minute {
				fail("%s: timeout %q: want a duration between 1ms and 5m, such as 10s", where, e.Timeout)
			}
			ep.Timeout = d
		}
		if !(e.RateLimit >= 0 && e.RateLimit <= 1e6) || e.Burst < 0 || e.Burst > 1e6 {
			fail("%s: rate_limit and burst must be between 0 and 1000000 (0: no limit)", where)
			ep.RateLimit, ep.Burst = 0, 0
		}
		if ep.Burst == 0 && ep.RateLimit > 0 {
			ep.Burst = int(ep.RateLimit + 0.999)
		}
		for _, s := range e.Filter.Severities {
			if !slices.Contains(severity, s) {
				fail("%s: filter.severities: %q is not one of %s", where, s, strings.Join(severity, ", "))
			}
		}
		for _, s := range e.Filter.Statuses {
			if !slices.Contains(statuses, s) {
				fail("%s: filter.statuses: %q is not firing or resolved", where, s)
			}
		}
		cfg.Endpoints = append(cfg.Endpoints, ep)
	}
	if c := f.ContactCaps; c != nil {
		if c.Window != "" {
			d, err := time.ParseDuration(c.Window)
			if err != nil || d <= 0 {
				fail("contact_caps.window %q: want a positive duration such as 168h", c.Window)
			}
			cfg.Caps.Window = d
		}
		if c.PerRule != nil {
			cfg.Caps.PerRule = *c.PerRule
		}
		if c.PerCustomer != nil {
			cfg.Caps.PerCustomer = *c.PerCustomer
		}
		if cfg.Caps.PerRule < 0 || cfg.Caps.PerCustomer < 0 {
			fail("contact_caps: per_rule and per_customer must not be negative (0 turns a cap off)")
		}
	}
	if f.StallAfter != "" {
		d, err := time.ParseDuration(f.StallAfter)
		if err != nil {
			fail("stall_after %q: want a duration such as 1h, or -1s to turn the guard off", f.StallAfter)
		}
		cfg.StallAfter = d
	}
	if len(errs) == 0 && len(cfg.Endpoints) == 0 {
		fail("%v: list at least one endpoint under endpoints:", errNoFile)
	}
	return cfg, errors.Join(errs...)
}

// CheckRules reports filters that name rules not in known.
func (c *Config) CheckRules(known func(id string) bool) error {
	var errs []error
	for _, ep := range c.Endpoints {
		for _, r := range ep.Filter.Rules {
			if !known(r) {
				errs = append(errs, fmt.Errorf("endpoint %s: filter.rules: no rule %q in the rules file", ep.Name, r))
			}
		}
	}
	return errors.Join(errs...)
}
