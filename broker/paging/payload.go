package paging

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/writhq/writ/broker"
)

// Stages of a page.
const (
	StageWaiting   = "waiting"   // waited past notify_after
	StageEscalated = "escalated" // waited past escalate_after
	StageResolved  = "resolved"  // decided, expired or cancelled
)

// maxIntent bounds the intent in a page.
const maxIntent = 200

// Page is what every receiver is told, before it is shaped for the kind.
type Page struct {
	Event    string    `json:"event"`   // writ.request.waiting | .escalated | .resolved
	Request  string    `json:"request"` // a short prefix of the id: the id itself is the agent's poll handle
	Agent    string    `json:"agent"`
	Queue    string    `json:"queue"`
	Intent   string    `json:"intent"`
	Scopes   []string  `json:"scopes"`
	Resource string    `json:"resource"`
	Risk     string    `json:"risk,omitempty"`
	Waiting  string    `json:"waiting"`
	Deadline time.Time `json:"deadline"`
	Outcome  string    `json:"outcome,omitempty"` // for resolved: approved, denied, expired, cancelled
	Console  string    `json:"console,omitempty"`
	// DedupKey groups the trigger and resolve of one request (PagerDuty).
	DedupKey string `json:"dedup_key"`
}

// neutral makes agent text safe to put in a chat message or an incident
// title: controls, bidi overrides and zero-width characters become '?',
// runs of space collapse, and it is cut to n runes.
func neutral(s string, n int) string {
	var b strings.Builder
	space := false
	count := 0
	for _, r := range s {
		if count >= n {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			r = '?'
		case unicode.IsSpace(r):
			if space {
				continue
			}
			r, space = ' ', true
			b.WriteRune(r)
			count++
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			r = '?'
		}
		space = false
		b.WriteRune(r)
		count++
	}
	return strings.TrimSpace(b.String())
}

// dedupKey is a stable, non-secret key for a request: a digest of its id.
func dedupKey(id string) string {
	sum := sha256.Sum256([]byte("writ-page:" + id))
	return "writ-" + hex.EncodeToString(sum[:8])
}

// shortID is broker.ShortID: an auth_req_id's random end, never all of it.
func shortID(id string) string { return broker.ShortID(id) }

func newPage(event string, r *broker.TaskRequest, queue string, now time.Time, console string) Page {
	t := r.ProposedTerms()
	scopes := make([]string, 0, len(t.Scopes))
	for _, s := range t.Scopes {
		scopes = append(scopes, neutral(s, 64))
	}
	p := Page{Event: "writ.request." + event, Request: shortID(r.ID), Agent: neutral(r.AgentID, 64), Queue: queue,
		Intent: neutral(r.Intent, maxIntent), Scopes: scopes, Resource: neutral(t.Resource, 200),
		Waiting: humanDuration(now.Sub(r.CreatedAt)), Deadline: r.Deadline.UTC(), Console: console, DedupKey: dedupKey(r.ID)}
	if r.Policy != nil && r.Policy.Risk != 0 {
		p.Risk = r.Policy.Risk.String()
	}
	return p
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	if m := int(d % time.Hour / time.Minute); m != 0 {
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), m)
	}
	return fmt.Sprintf("%dh", int(d/time.Hour))
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// to, so agent text cannot mention @channel or forge a link.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// body shapes a page for a receiver kind.
func body(r *Receiver, p Page) any {
	switch r.Kind {
	case KindSlack:
		var text string
		switch p.Event {
		case "writ.request.resolved":
			text = fmt.Sprintf("writ: request %s from %s is %s", p.Request, slackEscape(p.Agent), p.Outcome)
		default:
			verb := "is waiting for approval"
			if p.Event == "writ.request.escalated" {
				verb = "is still waiting: escalated to " + slackEscape(p.Queue)
			}
			text = fmt.Sprintf("writ: %s %s (%s): %s · %s at %s · waiting %s",
				slackEscape(p.Agent), verb, p.Request, slackEscape(p.Intent), slackEscape(strings.Join(p.Scopes, " ")), slackEscape(p.Resource), p.Waiting)
			if p.Console != "" {
				text += " · " + slackEscape(p.Console)
			}
		}
		return map[string]string{"text": text}
	case KindPagerDuty:
		ev := map[string]any{"routing_key": r.routingKey, "dedup_key": p.DedupKey}
		if p.Event == "writ.request.resolved" {
			ev["event_action"] = "resolve"
			return ev
		}
		sev := "warning"
		if p.Event == "writ.request.escalated" {
			sev = "error"
		}
		if p.Risk == "critical" {
			sev = "critical"
		}
		ev["event_action"] = "trigger"
		ev["payload"] = map[string]any{
			"summary":  neutral(fmt.Sprintf("writ: %s waits for approval (%s): %s", p.Agent, p.Queue, p.Intent), 1000),
			"source":   "writ",
			"severity": sev,
			"custom_details": map[string]any{"request": p.Request, "agent": p.Agent, "queue": p.Queue, "scopes": p.Scopes,
				"resource": p.Resource, "waiting": p.Waiting, "deadline": p.Deadline, "console": p.Console},
		}
		return ev
	}
	return p
}
