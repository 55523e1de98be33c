package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
)

// Template kinds.
const (
	KindCloudEvent = "cloudevent" // the CloudEvent JSON unchanged (the default)
	KindHubSpot    = "hubspot"    // a HubSpot CRM task (POST /crm/v3/objects/tasks)
	KindSalesforce = "salesforce" // a Churn_Alert__e platform event (POST /services/data/vXX.X/sobjects/Churn_Alert__e/)
	KindSlack      = "slack"      // a Slack incoming-webhook message
	KindGo         = "go"         // a user's text/template producing JSON
)

// Kinds lists the valid template kinds.
var Kinds = []string{KindCloudEvent, KindHubSpot, KindSalesforce, KindSlack, KindGo}

// JSONContentType is the Content-Type of every body but the CloudEvent's.
const JSONContentType = "application/json"

// Template turns an alert's CloudEvent into an endpoint's request body.
// A nil *Template renders the CloudEvent unchanged.
type Template struct {
	kind string
	tmpl *template.Template // kind go only
}

// ParseTemplate returns the template of an endpoint. kind is "" or
// "cloudevent" (the body is the CloudEvent JSON unchanged), "hubspot",
// "salesforce", "slack", or "go"; goText is the text/template source of kind
// "go" and must be empty for every other kind.
//
// A go template sees TemplateData (.ID, .Type, .Subject, .Time,
// .Alert.Rule, .Alert.CustomerID, .Alert.Customer.Tier, …) and the functions
// json (a value as JSON), join, upper and lower. Its output must be JSON. It
// is tried once here on a sample alert, so that a misspelt field or a body
// that is not JSON is reported when the configuration is loaded rather than
// on the first delivery.
func ParseTemplate(kind, goText string) (*Template, error) {
	k := strings.ToLower(strings.TrimSpace(kind))
	if k == "" {
		k = KindCloudEvent
	}
	switch k {
	case KindCloudEvent, KindHubSpot, KindSalesforce, KindSlack:
		if strings.TrimSpace(goText) != "" {
			return nil, fmt.Errorf("webhook template: a template text is only used with kind %q, not %q", KindGo, k)
		}
		return &Template{kind: k}, nil
	case KindGo:
		if strings.TrimSpace(goText) == "" {
			return nil, fmt.Errorf("webhook template: kind %q needs a template text", KindGo)
		}
		tmpl, err := template.New("webhook").Option("missingkey=error").Funcs(templateFuncs).Parse(goText)
		if err != nil {
			return nil, fmt.Errorf("webhook template: %w", err)
		}
		if err := checkLoops(tmpl); err != nil {
			return nil, err
		}
		t := &Template{kind: k, tmpl: tmpl}
		if err := t.check(); err != nil {
			return nil, err
		}
		return t, nil
	default:
		return nil, fmt.Errorf("webhook template: unknown kind %q (want one of %s)", kind, strings.Join(Kinds, ", "))
	}
}

// Kind returns the template's kind; "cloudevent" for the default.
func (t *Template) Kind() string {
	if t == nil {
		return KindCloudEvent
	}
	return t.kind
}

// Render returns the body for an alert and its Content-Type. ce is the raw
// CloudEvent JSON as read from the alert topic; ev is its parsed form
// (alerts.ParseCloudEvent), parsed from ce here when nil.
func (t *Template) Render(ce []byte, ev *alerts.CloudEvent) (body []byte, contentType string, err error) {
	kind := t.Kind()
	if kind == KindCloudEvent {
		return ce, ContentType, nil
	}
	if ev == nil {
		parsed, err := alerts.ParseCloudEvent(ce)
		if err != nil {
			return nil, "", fmt.Errorf("webhook template %s: the alert is not a CloudEvent: %w", kind, err)
		}
		ev = &parsed
	}
	if kind == KindGo {
		body, err = t.execute(ce, ev)
		return body, JSONContentType, err
	}
	a := ev.Data
	if a == nil {
		return nil, "", fmt.Errorf("webhook template %s: CloudEvent %q carries no alert data", kind, ev.ID)
	}
	at := a.Time
	if at.IsZero() {
		if at, err = time.Parse(time.RFC3339Nano, ev.Time); err != nil {
			return nil, "", fmt.Errorf("webhook template %s: CloudEvent %q: time %q: %w", kind, ev.ID, ev.Time, err)
		}
	}
	var v any
	switch kind {
	case KindHubSpot:
		v = hubspotTask(a, at)
	case KindSalesforce:
		v = salesforceEvent(ev, a, at)
	case KindSlack:
		v = slackMessage(a)
	}
	body, err = marshalJSON(v)
	if err != nil {
		return nil, "", fmt.Errorf("webhook template %s: %w", kind, err)
	}
	return body, JSONContentType, nil
}

// timeMillis is the time format of HubSpot and Salesforce: RFC 3339 in UTC
// with milliseconds.
const timeMillis = "2006-01-02T15:04:05.000Z07:00"

// opportunity reports whether a firing alert is good news (a loyalty
// milestone, severity info) rather than a churn risk.
func opportunity(a *alerts.Alert) bool {
	return a.Status == alerts.Firing && a.Severity == "info"
}

// headline is "Churn risk", "Resolved" or "Opportunity".
func headline(a *alerts.Alert) string {
	switch {
	case a.Status == alerts.Resolved:
		return "Resolved"
	case opportunity(a):
		return "Opportunity"
	default:
		return "Churn risk"
	}
}

// HubSpot

type hubspotBody struct {
	Properties hubspotProperties `json:"properties"`
}

type hubspotProperties struct {
	Timestamp string `json:"hs_timestamp"`
	Subject   string `json:"hs_task_subject"`
	Body      string `json:"hs_task_body"`
	Status    string `json:"hs_task_status"`
	Priority  string `json:"hs_task_priority"`
	Type      string `json:"hs_task_type"`
}

func hubspotTask(a *alerts.Alert, at time.Time) hubspotBody {
	status := "NOT_STARTED"
	if a.Status == alerts.Resolved {
		status = "COMPLETED"
	}
	priority := "LOW"
	switch a.Severity {
	case "critical", "high":
		priority = "HIGH"
	case "medium":
		priority = "MEDIUM"
	}
	var body strings.Builder
	if len(a.Reasons) > 0 {
		body.WriteString(strings.Join(a.Reasons, "; "))
		body.WriteString("\n")
	}
	fmt.Fprintf(&body, "Risk score: %d\nAlert: %s", a.RiskScore, a.AlertID)
	return hubspotBody{Properties: hubspotProperties{
		Timestamp: at.UTC().Format(timeMillis),
		Subject:   fmt.Sprintf("%s: %s for customer %s", headline(a), a.Rule, a.CustomerID),
		Body:      body.String(),
		Status:    status,
		Priority:  priority,
		Type:      "CALL",
	}}
}

// Salesforce

type salesforceBody struct {
	AlertID    string `json:"Alert_Id__c"`
	EventID    string `json:"Event_Id__c"`
	Rule       string `json:"Rule__c"`
	Severity   string `json:"Severity__c"`
	Status     string `json:"Status__c"`
	CustomerID string `json:"Customer_Id__c"`
	RiskScore  int    `json:"Risk_Score__c"`
	Reasons    string `json:"Reasons__c"`
	OccurredAt string `json:"Occurred_At__c"`
}

func salesforceEvent(ev *alerts.CloudEvent, a *alerts.Alert, at time.Time) salesforceBody {
	return salesforceBody{
		AlertID:    a.AlertID,
		EventID:    ev.ID,
		Rule:       a.Rule,
		Severity:   a.Severity,
		Status:     string(a.Status),
		CustomerID: a.CustomerID,
		RiskScore:  a.RiskScore,
		Reasons:    strings.Join(a.Reasons, "; "),
		OccurredAt: at.UTC().Format(timeMillis),
	}
}

// Slack

type slackBody struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type string    `json:"type"`
	Text slackText `json:"text"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackSectionMax is the longest text of a Slack section block.
const slackSectionMax = 3000

// slackEscape escapes the three characters Slack reserves for its markup.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func slackMessage(a *alerts.Alert) slackBody {
	icon := ":rotating_light:"
	switch {
	case a.Status == alerts.Resolved:
		icon = ":white_check_mark:"
	case opportunity(a):
		icon = ":tada:"
	}
	rule, customer, severity := slackEscape(a.Rule), slackEscape(a.CustomerID), slackEscape(a.Severity)
	reasons := make([]string, len(a.Reasons))
	for i, r := range a.Reasons {
		reasons[i] = slackEscape(r)
	}
	text := fmt.Sprintf("%s %s %s for %s (%s, risk %d)", icon, rule, a.Status, customer, severity, a.RiskScore)
	if len(reasons) > 0 {
		text += ": " + strings.Join(reasons, "; ")
	}

	var s strings.Builder
	fmt.Fprintf(&s, "%s *%s* %s for customer `%s`\n*Severity:* %s    *Risk score:* %d",
		icon, rule, a.Status, customer, severity, a.RiskScore)
	if len(reasons) > 0 {
		s.WriteString("\n*Reasons:*")
		for i, r := range reasons {
			line := "\n• " + r
			reserve := 0
			if rest := len(reasons) - i - 1; rest > 0 {
				reserve = len(fmt.Sprintf("\n• … and %d more", rest))
			}
			if s.Len()+len(line)+reserve > slackSectionMax {
				fmt.Fprintf(&s, "\n• … and %d more", len(reasons)-i)
				break
			}
			s.WriteString(line)
		}
	}
	return slackBody{
		Text:   text,
		Blocks: []slackBlock{{Type: "section", Text: slackText{Type: "mrkdwn", Text: s.String()}}},
	}
}

// Go templates

// TemplateData is what a go template sees: the CloudEvent's attributes and
// the alert it carries.
type TemplateData struct {
	SpecVersion     string
	ID              string // the CloudEvent id, "<alert_id>-firing" or "<alert_id>-resolved"
	Source          string
	Type            string // churnwatch.alert.firing or churnwatch.alert.resolved
	Subject         string // the customer id
	Time            string // RFC 3339
	DataContentType string
	Alert           *alerts.Alert // nil when the CloudEvent carries no data
	CloudEvent      string        // the CloudEvent JSON as received
}

var templateFuncs = template.FuncMap{
	"json":  templateJSON,
	"join":  templateJoin,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

// templateJSON returns v as JSON, so a template can build a valid body:
// {"text": {{json .Alert.Rule}}}.
func templateJSON(v any) (string, error) {
	b, err := marshalJSON(v)
	return string(b), err
}

// templateJoin joins a list of strings with a separator, in either order,
// so that both {{join .Alert.Reasons ", "}} and {{.Alert.Reasons | join ", "}}
// work.
func templateJoin(a, b any) (string, error) {
	if sep, ok := a.(string); ok {
		if list, ok := stringList(b); ok {
			return strings.Join(list, sep), nil
		}
	}
	if sep, ok := b.(string); ok {
		if list, ok := stringList(a); ok {
			return strings.Join(list, sep), nil
		}
	}
	return "", fmt.Errorf("join: want a list of strings and a separator, got %T and %T", a, b)
}

func stringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case []string:
		return l, true
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			out[i] = fmt.Sprint(e)
		}
		return out, true
	}
	return nil, false
}

func (t *Template) execute(ce []byte, ev *alerts.CloudEvent) ([]byte, error) {
	data := TemplateData{
		SpecVersion:     ev.SpecVersion,
		ID:              ev.ID,
		Source:          ev.Source,
		Type:            ev.Type,
		Subject:         ev.Subject,
		Time:            ev.Time,
		DataContentType: ev.DataContentType,
		Alert:           ev.Data,
		CloudEvent:      string(ce),
	}
	var buf limitedBuffer
	if err := t.tmpl.Execute(&buf, data); err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return nil, errBodyTooLarge
		}
		return nil, fmt.Errorf("webhook template go: %w", err)
	}
	if !json.Valid(buf.buf) {
		return nil, fmt.Errorf("webhook template go: the output is not valid JSON: %s", excerpt(buf.buf))
	}
	return buf.buf, nil
}

// check executes the template on a sample alert.
func (t *Template) check() error {
	last := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nps := int64(4)
	a := &alerts.Alert{
		AlertID:    alerts.ID("sample-rule", "sample-customer", last),
		Rule:       "sample-rule",
		Severity:   "high",
		CustomerID: "sample-customer",
		Status:     alerts.Firing,
		Time:       last.Add(180 * 24 * time.Hour),
		RiskScore:  72,
		Reasons:    []string{"sample reason", "another reason"},
		Customer:   alerts.Summary{Tier: "vip", Segment: "A", LastPurchaseAt: &last, TotalSpend: 1234.5, OpenTickets: 1, NPS: &nps},
	}
	ce, err := a.MarshalCloudEvent()
	if err != nil {
		return err
	}
	ev, err := alerts.ParseCloudEvent(ce)
	if err != nil {
		return err
	}
	if _, err := t.execute(ce, &ev); err != nil {
		return fmt.Errorf("%w (tried on a sample alert)", err)
	}
	return nil
}

// marshalJSON encodes v without escaping <, > and & (the bodies are not
// HTML).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// excerpt returns the start of b for an error message.
func excerpt(b []byte) string {
	const n = 80
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return strconv.Quote(s)
}
