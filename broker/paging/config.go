// Package paging tells people that a request is waiting: when a pending
// request has waited longer than a threshold it notifies the request's
// approver queue (a generic JSON webhook, a Slack-compatible incoming
// webhook, PagerDuty Events v2), escalates to a second queue after a
// second threshold, and optionally denies it after a third, audited as
// decided by writ's escalation. A page is resolved when the request is
// decided, expires or is cancelled.
//
// Payloads carry no secret: the request is named by a short prefix of
// its id (the id is the agent's poll handle), the intent is truncated and
// neutralised, and receiver URLs and keys are never logged.
package paging

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Receiver kinds.
const (
	KindWebhook   = "webhook"   // generic JSON POST
	KindSlack     = "slack"     // Slack-compatible incoming webhook ({"text": …})
	KindPagerDuty = "pagerduty" // PagerDuty Events API v2
)

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// Receiver is one place pages go.
type Receiver struct {
	Kind string `yaml:"kind"`
	// URL is the webhook (webhook, slack) or the Events API (pagerduty,
	// default DefaultPagerDutyURL). A URL holds a secret for Slack: give
	// it as url_env instead to keep it out of the file.
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	// RoutingKeyEnv names the environment variable that holds a PagerDuty
	// integration's routing key; the key is never read from the file.
	RoutingKeyEnv string `yaml:"routing_key_env"`

	routingKey string
}

// Config is the paging configuration (a YAML file).
type Config struct {
	// NotifyAfter: page the request's queue once it has waited this long.
	NotifyAfter time.Duration `yaml:"notify_after"`
	// EscalateAfter: page the escalation queue once it has waited this long.
	EscalateAfter time.Duration `yaml:"escalate_after"`
	// EscalateTo is the second approver queue.
	EscalateTo string `yaml:"escalate_to"`
	// AutoDenyAfter, when set, denies a request nobody decided in time.
	AutoDenyAfter time.Duration `yaml:"auto_deny_after"`
	// Queues map an approver queue (a login_hint, "oncall" by default) to
	// its receivers.
	Queues map[string][]Receiver `yaml:"queues"`
	// ConsoleHint is shown in pages: how to reach the console
	// (e.g. "writ console --server https://writ.example.com").
	ConsoleHint string `yaml:"console_hint"`
}

// Load reads and checks a paging configuration.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("paging configuration: %w", err)
	}
	return Parse(path, b)
}

// Parse reads a paging configuration; name is for errors.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

func (c *Config) check() error {
	if c.NotifyAfter <= 0 {
		return errors.New("notify_after must be a positive duration, e.g. 2m")
	}
	if c.EscalateAfter != 0 && c.EscalateAfter <= c.NotifyAfter {
		return errors.New("escalate_after must be later than notify_after")
	}
	if (c.EscalateAfter != 0) != (c.EscalateTo != "") {
		return errors.New("escalate_after and escalate_to go together")
	}
	if c.AutoDenyAfter != 0 && c.AutoDenyAfter <= max(c.NotifyAfter, c.EscalateAfter) {
		return errors.New("auto_deny_after must be later than notify_after and escalate_after")
	}
	if len(c.Queues) == 0 {
		return errors.New("queues: name at least one approver queue and its receivers")
	}
	if c.EscalateTo != "" && len(c.Queues[c.EscalateTo]) == 0 {
		return fmt.Errorf("escalate_to %q has no receivers under queues", c.EscalateTo)
	}
	for q, rs := range c.Queues {
		for i := range rs {
			r := &rs[i]
			where := fmt.Sprintf("queues.%s[%d]", q, i)
			if r.URLEnv != "" {
				if r.URL != "" {
					return fmt.Errorf("%s: url and url_env exclude each other", where)
				}
				r.URL = os.Getenv(r.URLEnv)
				if r.URL == "" {
					return fmt.Errorf("%s: the environment variable %s is empty", where, r.URLEnv)
				}
			}
			switch r.Kind {
			case KindWebhook, KindSlack:
				if r.URL == "" {
					return fmt.Errorf("%s: a %s receiver needs url or url_env", where, r.Kind)
				}
			case KindPagerDuty:
				if r.URL == "" {
					r.URL = DefaultPagerDutyURL
				}
				if r.RoutingKeyEnv == "" {
					return fmt.Errorf("%s: a pagerduty receiver needs routing_key_env (the key never goes in the file)", where)
				}
				if r.routingKey = os.Getenv(r.RoutingKeyEnv); r.routingKey == "" {
					return fmt.Errorf("%s: the environment variable %s is empty", where, r.RoutingKeyEnv)
				}
			default:
				return fmt.Errorf("%s: kind %q: want webhook, slack or pagerduty", where, r.Kind)
			}
			u, err := url.Parse(r.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("%s: the URL is not an http(s) URL", where)
			}
			if u.Scheme == "http" && !loopback(u.Hostname()) {
				return fmt.Errorf("%s: the URL must use https (plain http only on loopback)", where)
			}
		}
	}
	return nil
}

func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
