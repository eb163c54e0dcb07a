package guard

import (
	"net/http"

	"github.com/writhq/writ/wire"
)

// RequestLocation is the location of r as the guard judges it: the
// configured public URL and the request's path exactly as sent (still
// escaped), never the Host header.
func (g *Guard) RequestLocation(r *http.Request) string {
	return g.base + r.URL.EscapedPath()
}

// RequireActionAtPath returns middleware that authenticates like
// Middleware and also requires an authorization detail allowing action at
// the request's own location (RequestLocation). A path writ's location
// rule refuses (a path parameter, an empty or dot segment, a backslash, an
// encoded dot, slash or percent sign, non-ASCII) is answered 400 with the
// reason: it names no location unambiguously, so it is within nothing.
func (g *Guard) RequireActionAtPath(action string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			loc := g.RequestLocation(r)
			g.protect(next, func(p *Principal) *Error {
				if _, err := wire.CheckLocation(loc, loc); err != nil {
					return refuse(http.StatusBadRequest, "invalid_request", ReasonBadRequest, err.Error())
				}
				if !p.Allows(loc, action) {
					return refuse(http.StatusForbidden, "insufficient_scope", ReasonScope,
						"the token's authorization_details do not allow "+action+" at "+loc)
				}
				return nil
			}).ServeHTTP(w, r)
		})
	}
}
