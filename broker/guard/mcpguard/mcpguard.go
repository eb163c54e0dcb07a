package mcpguard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/broker/guard"
)

// DefaultMaxBody bounds a request body the guard reads (1 MiB).
const DefaultMaxBody = 1 << 20

// principalHeader carries, from Handler to the SDK's method handlers, the
// reference of the request's principal. Handler deletes any value a client
// sent, so only its own reaches the server.
const principalHeader = "X-Writ-Mcp-Principal"

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

	mu         sync.Mutex
	principals map[string]*guard.Principal // by principalHeader value, while the request is served
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
	return &Guard{cfg: cfg, location: cfg.Guard.Metadata().Resource, principals: map[string]*guard.Principal{}}, nil
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
// step-up challenge, and never reaches next.
func (m *Guard) Handler(next http.Handler) http.Handler {
	g := m.cfg.Guard
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(principalHeader)
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
		ref := m.remember(p)
		defer m.forget(ref)
		r = r.WithContext(guard.NewContext(r.Context(), p))
		r.Header.Set(principalHeader, ref)
		next.ServeHTTP(w, r)
	})
}

func (m *Guard) remember(p *guard.Principal) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	ref := base64.RawURLEncoding.EncodeToString(b[:])
	m.mu.Lock()
	m.principals[ref] = p
	m.mu.Unlock()
	return ref
}

func (m *Guard) forget(ref string) {
	m.mu.Lock()
	delete(m.principals, ref)
	m.mu.Unlock()
}

// principalOf returns the principal of the HTTP request that carried a
// JSON-RPC request, from the header Handler set.
func (m *Guard) principalOf(req mcp.Request) (*guard.Principal, bool) {
	extra := req.GetExtra()
	if extra == nil || extra.Header == nil {
		return nil, false
	}
	ref := extra.Header.Get(principalHeader)
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.principals[ref]
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
			p, found := m.principalOf(req)
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
