package guard

import (
	"context"
	"net/http"
	"strings"
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
// also requires every one of scopes (403 insufficient_scope otherwise).
func (g *Guard) RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return g.require(func(p *Principal) *Error {
		for _, s := range scopes {
			if !p.HasScope(s) {
				e := refuse(http.StatusForbidden, "insufficient_scope", ReasonScope, "the token does not grant scope "+s)
				e.Scope = strings.Join(scopes, " ")
				return e
			}
		}
		return nil
	})
}

// RequireAction returns middleware that authenticates like Middleware and
// also requires an authorization detail allowing action at location
// (403 insufficient_scope otherwise).
func (g *Guard) RequireAction(location, action string) func(http.Handler) http.Handler {
	return g.require(func(p *Principal) *Error {
		if !p.Allows(location, action) {
			return refuse(http.StatusForbidden, "insufficient_scope", ReasonScope,
				"the token's authorization_details do not allow "+action+" at "+location)
		}
		return nil
	})
}

func (g *Guard) require(ok func(*Principal) *Error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return g.protect(next, ok) }
}
