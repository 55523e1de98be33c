package webhook

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
)

// testAlert returns a real alert's CloudEvent JSON and its parsed form.
func testAlert(t *testing.T, mutate func(*alerts.Alert)) ([]byte, *alerts.CloudEvent) {
	t.Helper()
	last := time.Date(2025, 7, 4, 10, 0, 0, 0, time.UTC)
	start := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	a := alerts.Alert{
		AlertID:    alerts.ID("vip-no-purchase-180d", "c-42", start),
		Rule:       "vip-no-purchase-180d",
		Severity:   "high",
		CustomerID: "c-42",
		Status:     alerts.Firing,
		Time:       start,
		RiskScore:  72,
		Reasons:    []string{"no purchase for 181 days", "tier vip"},
		Customer:   alerts.Summary{Tier: "vip", Segment: "A", LastPurchaseAt: &last, TotalSpend: 1234.5},
	}
	if mutate != nil {
		mutate(&a)
	}
	ce, err := a.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := alerts.ParseCloudEvent(ce)
	if err != nil {
		t.Fatal(err)
	}
	return ce, &ev
}

func render(t *testing.T, kind, text string, ce []byte, ev *alerts.CloudEvent) (map[string]any, string) {
	t.Helper()
	tp, err := ParseTemplate(kind, text)
	if err != nil {
		t.Fatalf("ParseTemplate(%q): %v", kind, err)
	}
	body, ct, err := tp.Render(ce, ev)
	if err != nil {
		t.Fatalf("Render %s: %v", kind, err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s body is not JSON: %v\n%s", kind, err, body)
	}
	return m, ct
}

func TestTemplateCloudEvent(t *testing.T) {
	ce, ev := testAlert(t, nil)
	for _, kind := range []string{"", "cloudevent", "CloudEvent"} {
		tp, err := ParseTemplate(kind, "")
		if err != nil {
			t.Fatal(err)
		}
		if tp.Kind() != "cloudevent" {
			t.Errorf("Kind(%q) = %q", kind, tp.Kind())
		}
		body, ct, err := tp.Render(ce, ev)
		if err != nil || ct != ContentType || string(body) != string(ce) {
			t.Errorf("kind %q: %q %v\n%s", kind, ct, err, body)
		}
	}
	var nilT *Template
	if body, ct, err := nilT.Render(ce, nil); err != nil || ct != ContentType || string(body) != string(ce) {
		t.Errorf("nil template: %q %v", ct, err)
	}
}

func TestTemplateHubSpot(t *testing.T) {
	ce, ev := testAlert(t, nil)
	m, ct := render(t, "hubspot", "", ce, ev)
	if ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	want := map[string]any{"properties": map[string]any{
		"hs_timestamp":     "2026-01-02T03:04:05.678Z",
		"hs_task_subject":  "Churn risk: vip-no-purchase-180d for customer c-42",
		"hs_task_body":     "no purchase for 181 days; tier vip\nRisk score: 72\nAlert: " + ev.Data.AlertID,
		"hs_task_status":   "NOT_STARTED",
		"hs_task_priority": "HIGH",
		"hs_task_type":     "CALL",
	}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("hubspot body\n got %v\nwant %v", m, want)
	}

	tests := []struct {
		severity string
		status   alerts.Status
		subject  string
		taskStat string
		priority string
	}{
		{"critical", alerts.Firing, "Churn risk", "NOT_STARTED", "HIGH"},
		{"medium", alerts.Firing, "Churn risk", "NOT_STARTED", "MEDIUM"},
		{"low", alerts.Firing, "Churn risk", "NOT_STARTED", "LOW"},
		{"info", alerts.Firing, "Opportunity", "NOT_STARTED", "LOW"},
		{"high", alerts.Resolved, "Resolved", "COMPLETED", "HIGH"},
	}
	for _, tt := range tests {
		ce, ev := testAlert(t, func(a *alerts.Alert) { a.Severity, a.Status = tt.severity, tt.status })
		m, _ := render(t, "hubspot", "", ce, ev)
		p := m["properties"].(map[string]any)
		if got := p["hs_task_subject"]; got != tt.subject+": vip-no-purchase-180d for customer c-42" {
			t.Errorf("%s %s: subject %q", tt.severity, tt.status, got)
		}
		if p["hs_task_status"] != tt.taskStat || p["hs_task_priority"] != tt.priority {
			t.Errorf("%s %s: status %v priority %v", tt.severity, tt.status, p["hs_task_status"], p["hs_task_priority"])
		}
	}
}

func TestTemplateSalesforce(t *testing.T) {
	ce, ev := testAlert(t, func(a *alerts.Alert) { a.Status = alerts.Resolved })
	m, ct := render(t, "salesforce", "", ce, nil) // parsed from ce
	if ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	want := map[string]any{
		"Alert_Id__c":    ev.Data.AlertID,
		"Event_Id__c":    ev.Data.AlertID + "-resolved",
		"Rule__c":        "vip-no-purchase-180d",
		"Severity__c":    "high",
		"Status__c":      "resolved",
		"Customer_Id__c": "c-42",
		"Risk_Score__c":  72.0,
		"Reasons__c":     "no purchase for 181 days; tier vip",
		"Occurred_At__c": "2026-01-02T03:04:05.678Z",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("salesforce body\n got %v\nwant %v", m, want)
	}
	if _, err := time.Parse(time.RFC3339, m["Occurred_At__c"].(string)); err != nil {
		t.Error(err)
	}
}

func TestTemplateSlack(t *testing.T) {
	ce, ev := testAlert(t, func(a *alerts.Alert) {
		a.CustomerID = "c<42>&co"
		a.Reasons = []string{"no purchase for 181 days", "tier <vip> & loyal"}
	})
	body, ct, err := mustParse(t, "slack", "").Render(ce, ev)
	if err != nil || ct != "application/json" {
		t.Fatalf("%q %v", ct, err)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	wantText := ":rotating_light: vip-no-purchase-180d firing for c&lt;42&gt;&amp;co (high, risk 72): no purchase for 181 days; tier &lt;vip&gt; &amp; loyal"
	if msg.Text != wantText {
		t.Errorf("text\n got %q\nwant %q", msg.Text, wantText)
	}
	if len(msg.Blocks) != 1 || msg.Blocks[0].Type != "section" || msg.Blocks[0].Text.Type != "mrkdwn" {
		t.Fatalf("blocks: %s", body)
	}
	wantSection := ":rotating_light: *vip-no-purchase-180d* firing for customer `c&lt;42&gt;&amp;co`\n" +
		"*Severity:* high    *Risk score:* 72\n*Reasons:*\n• no purchase for 181 days\n• tier &lt;vip&gt; &amp; loyal"
	if got := msg.Blocks[0].Text.Text; got != wantSection {
		t.Errorf("section\n got %q\nwant %q", got, wantSection)
	}

	ce, ev = testAlert(t, func(a *alerts.Alert) { a.Status = alerts.Resolved })
	m, _ := render(t, "slack", "", ce, ev)
	if got := m["text"].(string); !strings.HasPrefix(got, ":white_check_mark: vip-no-purchase-180d resolved for c-42 (high, risk 72)") {
		t.Errorf("resolved text %q", got)
	}

	// Many long reasons stay within Slack's 3000-character section.
	ce, ev = testAlert(t, func(a *alerts.Alert) {
		a.Reasons = nil
		for range 100 {
			a.Reasons = append(a.Reasons, strings.Repeat("x", 100))
		}
	})
	body, _, err = mustParse(t, "slack", "").Render(ce, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	if s := msg.Blocks[0].Text.Text; len(s) > 3000 || !strings.Contains(s, "more") {
		t.Errorf("section of %d bytes, ends %q", len(s), s[len(s)-40:])
	}
}

func mustParse(t *testing.T, kind, text string) *Template {
	t.Helper()
	tp, err := ParseTemplate(kind, text)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestTemplateGo(t *testing.T) {
	ce, ev := testAlert(t, func(a *alerts.Alert) { a.Reasons = []string{`said "bye"`, "tier vip"} })
	const text = `{"text": {{json (printf "%s: %s for %s" (upper .Alert.Severity) .Alert.Rule .Subject)}},
 "id": {{json .ID}}, "type": {{json .Type}}, "time": {{json .Time}},
 "reasons": {{json .Alert.Reasons}}, "why": {{json (join .Alert.Reasons "; ")}},
 "piped": {{.Alert.Reasons | join ", " | lower | json}},
 "tier": {{json .Alert.Customer.Tier}}, "score": {{.Alert.RiskScore}},
 "status": {{json .Alert.Status}}, "customer": {{json .Alert.CustomerID}},
 "event": {{.CloudEvent}}}`
	m, ct := render(t, "go", text, ce, ev)
	if ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	want := map[string]any{
		"text":     "HIGH: vip-no-purchase-180d for c-42",
		"id":       ev.ID,
		"type":     "churnwatch.alert.firing",
		"time":     "2026-01-02T03:04:05.6789Z",
		"reasons":  []any{`said "bye"`, "tier vip"},
		"why":      `said "bye"; tier vip`,
		"piped":    `said "bye", tier vip`,
		"tier":     "vip",
		"score":    72.0,
		"status":   "firing",
		"customer": "c-42",
	}
	event := m["event"]
	delete(m, "event")
	if !reflect.DeepEqual(m, want) {
		t.Errorf("go body\n got %v\nwant %v", m, want)
	}
	if e, ok := event.(map[string]any); !ok || e["id"] != ev.ID {
		t.Errorf("event %v", event)
	}
}

func TestTemplateGoErrors(t *testing.T) {
	ce, ev := testAlert(t, nil)
	// Execution errors on data the sample did not show are returned.
	tp := mustParse(t, "go", `{"x": {{if eq .Alert.Severity "critical"}}{{index .Alert.Reasons 5}}{{else}}1{{end}}}`)
	if _, _, err := tp.Render(ce, ev); err != nil {
		t.Fatalf("high: %v", err)
	}
	ce2, ev2 := testAlert(t, func(a *alerts.Alert) { a.Severity = "critical" })
	if _, _, err := tp.Render(ce2, ev2); err == nil || !strings.Contains(err.Error(), "index") {
		t.Errorf("critical: want an index error, got %v", err)
	}
	// A CloudEvent without data.
	noData := &alerts.CloudEvent{ID: "x-firing"}
	if _, _, err := mustParse(t, "go", `{"r": {{json .Alert.Rule}}}`).Render([]byte(`{"id":"x-firing"}`), noData); err == nil {
		t.Error("nil alert: want an error")
	}
	for _, kind := range []string{"hubspot", "salesforce", "slack"} {
		if _, _, err := mustParse(t, kind, "").Render([]byte(`{"id":"x-firing"}`), noData); err == nil || !strings.Contains(err.Error(), "no alert data") {
			t.Errorf("%s without data: %v", kind, err)
		}
	}
	if _, _, err := mustParse(t, "slack", "").Render([]byte(`not json`), nil); err == nil {
		t.Error("slack of a non-CloudEvent: want an error")
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		kind, text, want string
	}{
		{"zapier", "", "unknown kind \"zapier\" (want one of cloudevent, hubspot, salesforce, slack, go)"},
		{"go", "", "kind \"go\" needs a template text"},
		{"go", "  \n", "needs a template text"},
		{"slack", `{"a":1}`, "only used with kind \"go\""},
		{"", `{"a":1}`, "only used with kind \"go\""},
		{"go", `{"a": {{json .Alert.Rule}`, "webhook:1:"},
		{"go", `{"a": {{nope .ID}}}`, "function \"nope\" not defined"},
		{"go", `{"a": {{json .Alert.Rulez}}}`, "can't evaluate field Rulez"},
		{"go", `{"a": {{.Alert.Rule}}}`, "not valid JSON"},
		{"go", `{{join .ID .Type}}`, "join: want a list of strings"},
	}
	for _, tt := range tests {
		_, err := ParseTemplate(tt.kind, tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTemplate(%q, %q) = %v, want an error containing %q", tt.kind, tt.text, err, tt.want)
		}
	}
}
