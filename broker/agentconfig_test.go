package broker_test

import (
	"context"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// TestAgentConfigAgreesWithConfig: the service's agent index answers what
// Config.Agent answers, for every agent, for unknown ids, and after the
// configuration it was made from changed.
func TestAgentConfigAgreesWithConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Agents = append(cfg.Agents, broker.Agent{ID: "release-bot", Name: "a second entry, never found"})
	svc, err := broker.New(context.Background(), cfg, brokertest.NewStore(), broker.Options{Issuer: "https://writ.example"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, id := range []string{"release-bot", "support", "late-bot", "nobody", ""} {
			want, wantOK := cfg.Agent(id)
			got, ok := svc.AgentConfig(id)
			if ok != wantOK || got != want {
				t.Errorf("%s: AgentConfig(%q) = %p %v, Config.Agent = %p %v", when, id, got, ok, want, wantOK)
			}
		}
	}
	check("as made")
	cfg.Agents = append([]broker.Agent{{ID: "late-bot"}}, cfg.Agents...)
	check("after an agent was put first")
	cfg.Agents[1].ID = "renamed"
	check("after an agent was renamed")
}
