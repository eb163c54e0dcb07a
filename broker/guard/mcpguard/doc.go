// Package mcpguard puts writ in front of an MCP server built with the
// official Go SDK (github.com/modelcontextprotocol/go-sdk) over streamable
// HTTP. Wrap the SDK's handler with Handler: every request must carry a
// live writ token for the server's resource (the guard's checks: DPoP,
// revocation feed, audience), and each tools/call and resources/read must
// be allowed by the token: the action a tool needs is "tool:<name>" by
// default (Config.ToolAction), checked at the server's resource URI, with
// Principal.Allows (the scope names the action, and a detail covers it
// when the token has details). A call the token does not cover is refused
// before the server sees it, with HTTP 403 insufficient_scope naming the
// action and the covering authorization detail, which the agent SDK turns
// into a step-up (agent.Task.StepUp, or Task.StepUpClient automatically),
// as the MCP authorization specification's scope challenge asks.
// Every accepted and refused call is reported to writ with the guard's use
// reports. ToolsListFilter hides the tools a token does not allow from
// tools/list. The SDK receives the caller as its auth.TokenInfo (the agent
// as UserID), so it binds each session to the agent that opened it; tool
// handlers find the Principal with PrincipalOf.
//
// The guard reads JSON-RPC bodies the way the SDK does (case-sensitive
// member names) and refuses any body it cannot read unambiguously: not
// JSON, a member given twice, a tools/call without a string name, so the
// server never runs a call the guard judged as something else.
package mcpguard
