package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/guard/mcpguard"
)

// deployTools are the deploy MCP server's tools and what each one says it did.
var deployTools = []struct{ name, desc, did string }{
	{"status", "Show a service's rollout status", "web is on v2.14.0, 3/3 replicas healthy"},
	{"deploy", "Roll out a version of a service to production", "rolled out"},
	{"rollback", "Roll a service back to its previous version", "rolled back"},
}

// deployArgs are the arguments every deploy tool takes.
type deployArgs struct {
	Service string `json:"service" jsonschema:"the service, e.g. web"`
	Version string `json:"version,omitempty" jsonschema:"the version to roll out"`
}

// NewDeployMCP returns the deploy MCP server (official Go SDK, streamable
// HTTP) behind mcpguard: each tools/call needs the scope tool:<name> in a
// live writ token for the deploy resource, a tool the token does not
// allow is refused with the step-up challenge, and tools/list shows only
// the tools the token allows.
func NewDeployMCP(g *guard.Guard, log *slog.Logger) (http.Handler, error) {
	mg, err := mcpguard.New(mcpguard.Config{Guard: g})
	if err != nil {
		return nil, err
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "acme-deploy", Version: "1.0.0"}, &mcp.ServerOptions{Logger: log})
	for _, t := range deployTools {
		mcp.AddTool(server, &mcp.Tool{Name: t.name, Description: t.desc},
			func(ctx context.Context, req *mcp.CallToolRequest, in deployArgs) (*mcp.CallToolResult, any, error) {
				text := t.did
				if t.name != "status" {
					text = fmt.Sprintf("%s %s %s", in.Service, t.did, strings.TrimSpace(in.Version))
				}
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
			})
	}
	server.AddReceivingMiddleware(mg.ToolsListFilter())
	return mg.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)), nil
}

// AddMCP mounts the deploy MCP server on the resource server at the deploy
// resource's URI, with its RFC 9728 metadata, using the guard
// NewResourceServer made for that resource. Call it before Serve.
func (rs *ResourceServer) AddMCP(setup *Setup, log *slog.Logger) error {
	uri := setup.Resources[ResDeploy]
	mux, ok := rs.handler.(*http.ServeMux)
	if !ok || uri == "" {
		return errors.New("demo: the resource server has no deploy resource")
	}
	for _, g := range rs.guards {
		if g.Metadata().Resource != uri {
			continue
		}
		h, err := NewDeployMCP(g, log.With("resource", ResDeploy))
		if err != nil {
			return err
		}
		g.HandleMetadata(mux)
		mux.Handle(strings.TrimPrefix(uri, setup.ServerURL), h)
		return nil
	}
	return errors.New("demo: no guard for the deploy resource")
}
