package guard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/writhq/writ/wire"
)

// Metadata is this resource's RFC 9728 protected-resource metadata: its
// identifier (the aud of its tokens), writ as its authorization server,
// the scopes it understands, the Authorization header as the one way to
// present a token, whether tokens must be DPoP-bound, and writ's
// authorization details type.
func (g *Guard) Metadata() wire.ProtectedResourceMetadata {
	return wire.ProtectedResourceMetadata{
		Resource:                           g.cfg.Audience,
		AuthorizationServers:               []string{g.cfg.Issuer},
		ScopesSupported:                    g.cfg.Scopes,
		BearerMethodsSupported:             []string{"header"},
		ResourceName:                       g.cfg.ResourceName,
		DPoPSigningAlgValuesSupported:      g.cfg.DPoP.Algorithms(),
		DPoPBoundAccessTokensRequired:      g.cfg.RequireDPoP,
		AuthorizationDetailsTypesSupported: []string{wire.TaskDetailType},
	}
}

// MetadataPath is the path of Config.ResourceMetadataURL, where to mount
// MetadataHandler.
func (g *Guard) MetadataPath() string {
	u, err := url.Parse(g.cfg.ResourceMetadataURL)
	if err != nil || u.Path == "" {
		return wire.ProtectedResourcePath
	}
	return u.Path
}

// MetadataHandler serves Metadata as JSON (RFC 9728 §3.2) to GET and HEAD;
// it needs no token.
func (g *Guard) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, _ := json.Marshal(g.Metadata())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// HandleMetadata mounts MetadataHandler on mux at MetadataPath.
func (g *Guard) HandleMetadata(mux *http.ServeMux) {
	mux.Handle("GET "+strings.TrimSuffix(g.MetadataPath(), "/"), g.MetadataHandler())
}
