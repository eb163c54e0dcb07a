package demo

import (
	"context"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/broker/agent"
)

// mcpAgents are the agents that work through an MCP server rather than
// the scripted HTTP calls.
var mcpAgents = map[string]bool{"deploy-bot": true}

// performMCP is deploy-bot's task: granted the status tool only, it
// connects to the deploy MCP server with the official Go SDK client over
// the task's step-up client, checks the status, then calls deploy, which
// it was not granted: the guard's challenge becomes a follow-on request
// for exactly tool:deploy, shown to the operator as a difference from the
// running task. Approved, the call goes through; denied, the agent logs
// the operator's reason and stops.
func (a *simAgent) performMCP(ctx context.Context) {
	uri := a.fleet.Setup.Resources[ResDeploy]
	task, err := a.client.RequestAndWait(ctx, agent.TaskRequest{
		Intent:   "Roll out web v2.14.1 (fixes the checkout timeout) after checking the current rollout",
		Scopes:   []string{"tool:status"},
		Resource: uri, TTL: 10 * time.Minute,
	}, nil)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Info("task not granted", "err", err)
		}
		return
	}
	defer func() {
		if err := task.Done(context.WithoutCancel(ctx)); err != nil {
			a.log.Info("report task done", "err", err)
		}
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "deploy-bot", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: uri, HTTPClient: task.StepUpClient(), DisableStandaloneSSE: true}, nil)
	if err != nil {
		a.log.Info("cannot reach the deploy MCP server", "err", err)
		return
	}
	defer cs.Close()
	if list, err := cs.ListTools(ctx, nil); err == nil {
		names := make([]string, 0, len(list.Tools))
		for _, t := range list.Tools {
			names = append(names, t.Name)
		}
		a.log.Info("MCP tools this task may call", "tools", strings.Join(names, " "))
	}
	for _, c := range []struct{ tool, version string }{{"status", ""}, {"deploy", "v2.14.1"}, {"status", ""}} {
		if !sleep(ctx, a.jitter(a.fleet.Step)) {
			return
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: deployArgs{Service: "web", Version: c.version}})
		if err != nil {
			// The MCP SDK reports the step-up's error as text; the task keeps its cause.
			if r := task.Refusals(); len(r) > 0 && r[len(r)-1].Reason() != "" {
				a.log.Info("step-up denied; stopping the task", "tool", c.tool, "reason", r[len(r)-1].Reason())
			} else {
				a.log.Info("MCP call refused; stopping the task", "tool", c.tool, "err", err)
			}
			return
		}
		if len(res.Content) > 0 {
			if tc, ok := res.Content[0].(*mcp.TextContent); ok {
				a.log.Info("MCP tool called", "tool", c.tool, "result", tc.Text)
			}
		}
	}
}
