package mcpguard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/broker/guard"
)

// DefaultMaxBody bounds a request body the guard reads (1 MiB).
const DefaultMaxBody = 1 << 20

// PrincipalKey is where Handler puts the *guard.Principal in the SDK's
// auth.TokenInfo.Extra, which tool handlers see as req.Extra.TokenInfo.
const PrincipalKey = "writ.principal"

// Config configures a Guard.
type Config struct {
	// Guard checks the tokens; its Audience is the MCP server's resource
	// URI, where tool actions are checked. Required, and it must be running.
	Guard *guard.Guard
	// ToolAction maps a tool's name to the action calling it needs
	// (default "tool:" + name).
	ToolAction func(tool string) string
	// ReadAction maps a resources/read URI to the location and action
	// reading it needs (default: the URI itself, "resources:read").
	ReadAction func(uri string) (location, action string)
	// MaxBody bounds a request body (default DefaultMaxBody).
	MaxBody int64
}

// Guard authorizes MCP calls with writ tokens.
type Guard struct {
	cfg      Config
	location string
}

// New checks cfg and returns a Guard.
func New(cfg Config) (*Guard, error) {
	if cfg.Guard == nil {
		return nil, errors.New("mcpguard: Config.Guard is required")
	}
	if cfg.ToolAction == nil {
		cfg.ToolAction = func(tool string) string { return "tool:" + tool }
	}
	if cfg.ReadAction == nil {
		cfg.ReadAction = func(uri string) (string, string) { return uri, "resources:read" }
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	return &Guard{cfg: cfg, location: cfg.Guard.Metadata().Resource}, nil
}

// Need is what one JSON-RPC request needs: an action at a location.
type Need struct {
	Method   string
	Location string
	Action   string
}

// Handler authenticates every request to next (the SDK's
// StreamableHTTPHandler) and authorizes the calls in a POST body: a call
// the token does not allow is answered 403 insufficient_scope, with the
// step-up challenge, and never reaches next. Accepted requests reach next
// with the SDK's auth.TokenInfo: the agent as UserID, so the SDK binds each
// session to the agent that opened it and refuses it to any other; the
// scopes; and the Principal under Extra[PrincipalKey].
func (m *Guard) Handler(next http.Handler) http.Handler {
	g := m.cfg.Guard
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var needs []Need
		if r.Method == http.MethodPost && r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, m.cfg.MaxBody+1))
			r.Body.Close()
			switch {
			case err != nil:
				http.Error(w, "cannot read the request body", http.StatusBadRequest)
				return
			case int64(len(body)) > m.cfg.MaxBody:
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			if needs, err = m.Needs(body); err != nil {
				writeJSONRPCError(w, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		p, err := g.CheckWith(r.Context(), r, func(p *guard.Principal) *guard.Error {
			for _, n := range needs {
				if !p.Allows(n.Location, n.Action) {
					return guard.InsufficientAction(n.Location, n.Action)
				}
			}
			return nil
		})
		if err != nil {
			g.WriteError(w, err)
			return
		}
		withTokenInfo(r, p, next).ServeHTTP(w, r.WithContext(guard.NewContext(r.Context(), p)))
	})
}

// withTokenInfo hands p to the SDK as its auth.TokenInfo. The SDK sets
// that only through its own bearer middleware, so the request passes
// through it with a stand-in Bearer credential that the verifier maps to
// p (the guard has checked the real one), and leaves it with its own
// Authorization header back. Expiry is the guard's to judge (with its
// clock and leeway), so the TokenInfo carries none.
func withTokenInfo(r *http.Request, p *guard.Principal, next http.Handler) http.Handler {
	info := &auth.TokenInfo{Scopes: p.Scopes, UserID: p.Agent, Extra: map[string]any{PrincipalKey: p}}
	original := r.Header.Values("Authorization")
	verify := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return info, nil }
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header["Authorization"] = original
		next.ServeHTTP(w, r)
	})
	bearer := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer writ-checked")
		bearer.ServeHTTP(w, r)
	})
}

// PrincipalOf returns the principal of the HTTP request that carried an
// MCP request, as Handler recorded it.
func PrincipalOf(req mcp.Request) (*guard.Principal, bool) {
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return nil, false
	}
	p, ok := extra.TokenInfo.Extra[PrincipalKey].(*guard.Principal)
	return p, ok
}

// ToolsListFilter returns SDK receiving middleware (add it with
// Server.AddReceivingMiddleware) that leaves out of tools/list the tools
// the request's token does not allow. A tools/list that did not come
// through Handler lists nothing.
func (m *Guard) ToolsListFilter() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if method != "tools/list" || err != nil {
				return res, err
			}
			list, ok := res.(*mcp.ListToolsResult)
			if !ok {
				return res, err
			}
			p, found := PrincipalOf(req)
			out := *list
			out.Tools = slices.DeleteFunc(slices.Clone(list.Tools), func(t *mcp.Tool) bool {
				return !found || !p.Allows(m.location, m.cfg.ToolAction(t.Name))
			})
			return &out, nil
		}
	}
}

// ToolAction returns the action calling tool needs.
func (m *Guard) ToolAction(tool string) string { return m.cfg.ToolAction(tool) }

// Location is where tool actions are checked: the server's resource URI.
func (m *Guard) Location() string { return m.location }

// writeJSONRPCError answers a body the guard cannot read unambiguously.
func writeJSONRPCError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	msg := strings.ReplaceAll(err.Error(), `"`, `'`)
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"`+msg+`"}}`)
}
