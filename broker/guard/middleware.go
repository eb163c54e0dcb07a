package guard

import (
	"context"
	"net/http"
	"strings"

	"github.com/writhq/writ/wire"
)

type principalKey struct{}

// FromContext returns the Principal the guard's middleware put in ctx.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Middleware refuses requests without a valid, live writ token and passes
// the others on with the Principal in their context.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return g.protect(next, nil)
}

// protect authenticates a request and applies require, unless an outer
// guard middleware already authenticated it; then it only applies require.
func (g *Guard) protect(next http.Handler, require func(*Principal) *Error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := FromContext(r.Context()); ok {
			if require != nil {
				if e := require(p); e != nil {
					e.DPoP = p.JKT != ""
					g.metrics.refuse(e.Reason)
					g.WriteError(w, e)
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		p, err := g.checkWith(r.Context(), r, require)
		if err != nil {
			g.WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

// RequireScope returns middleware that authenticates like Middleware and
// also requires every one of scopes (403 insufficient_scope otherwise,
// naming the scopes the token lacks).
func (g *Guard) RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return g.require(func(p *Principal) *Error {
		var missing []string
		for _, s := range scopes {
			if !p.HasScope(s) {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		e := refuse(http.StatusForbidden, "insufficient_scope", ReasonScope, "the token does not grant scope "+strings.Join(missing, " "))
		e.Scope = strings.Join(missing, " ")
		return e
	})
}

// RequireAction returns middleware that authenticates like Middleware and
// also requires that the principal Allows action at location (403
// insufficient_scope otherwise, with the challenge InsufficientAction
// describes).
func (g *Guard) RequireAction(location, action string) func(http.Handler) http.Handler {
	return g.require(func(p *Principal) *Error {
		if !p.Allows(location, action) {
			return InsufficientAction(location, action)
		}
		return nil
	})
}

// InsufficientAction is the refusal of a call that needs action at
// location: 403 insufficient_scope whose challenge names the action as
// scope and carries the one authorization detail (writ's type, that
// action, that location) that would cover it, so an agent can ask for
// exactly that and no more.
func InsufficientAction(location, action string) *Error {
	e := refuse(http.StatusForbidden, "insufficient_scope", ReasonScope,
		"the token does not allow "+action+" at "+location)
	e.Scope = action
	e.Details = []wire.AuthorizationDetail{{Type: wire.TaskDetailType, Actions: []string{action}, Locations: []string{location}}}
	return e
}

func (g *Guard) require(ok func(*Principal) *Error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return g.protect(next, ok) }
}

// CheckWith is Check with a requirement on the Principal, for guards of
// protocols that know what a request needs only after reading it (the MCP
// guard reads the JSON-RPC body): require returns nil to accept, or the
// refusal (InsufficientAction). The use is reported to writ as accepted or
// refused accordingly, as the middleware's are.
func (g *Guard) CheckWith(ctx context.Context, r *http.Request, require func(*Principal) *Error) (*Principal, error) {
	return g.checkWith(ctx, r, require)
}
