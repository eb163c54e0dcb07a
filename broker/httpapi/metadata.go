package httpapi

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/writhq/writ/broker"
)

// CIBAGrantType is the CIBA grant type (CIBA Core §10.1).
const CIBAGrantType = "urn:openid:params:grant-type:ciba"

// Metadata is the authorization server metadata (RFC 8414 §2), with the
// CIBA (CIBA Core §4), RAR (RFC 9396 §10) and DPoP (RFC 9449 §5.1)
// members. The same document is served as OpenID Provider metadata.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	JWKSURI                                string   `json:"jwks_uri"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgsSupported  []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	BackchannelAuthenticationEndpoint      string   `json:"backchannel_authentication_endpoint"`
	BackchannelTokenDeliveryModesSupported []string `json:"backchannel_token_delivery_modes_supported"`
	BackchannelUserCodeParameterSupported  bool     `json:"backchannel_user_code_parameter_supported"`
	AuthorizationDetailsTypesSupported     []string `json:"authorization_details_types_supported"`
	DPoPSigningAlgsSupported               []string `json:"dpop_signing_alg_values_supported"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgs   []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethods          []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgs      []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	IDTokenSigningAlgsSupported            []string `json:"id_token_signing_alg_values_supported"`
	ClaimsParameterSupported               bool     `json:"claims_parameter_supported"`
	RequestParameterSupported              bool     `json:"request_parameter_supported"`
	DPoPBoundAccessTokensRequired          bool     `json:"dpop_bound_access_tokens_required,omitempty"`
	// ProtectedResources are the resources writ issues tokens for (RFC
	// 9728 §4): each one's resource identifier, the aud of its tokens.
	ProtectedResources []string `json:"protected_resources,omitempty"`
}

// Metadata returns the server's metadata document.
func (s *Server) Metadata() *Metadata {
	authMethods := []string{MethodPrivateKeyJWT}
	assertionAlgs := make([]string, len(AssertionAlgs))
	for i, a := range AssertionAlgs {
		assertionAlgs[i] = string(a)
	}
	signing := []string{}
	for _, k := range s.svc.SigningKeys() {
		if k.RetiredAt.IsZero() && !slices.Contains(signing, k.Alg) {
			signing = append(signing, k.Alg)
		}
	}
	return &Metadata{
		Issuer:                                 s.issuer,
		TokenEndpoint:                          s.url(pathToken),
		JWKSURI:                                s.url(pathJWKS),
		ResponseTypesSupported:                 []string{}, // no authorization endpoint: CIBA only
		GrantTypesSupported:                    []string{CIBAGrantType, ClientCredentialsGrantType},
		ScopesSupported:                        s.scopes(),
		TokenEndpointAuthMethodsSupported:      authMethods,
		TokenEndpointAuthSigningAlgsSupported:  assertionAlgs,
		BackchannelAuthenticationEndpoint:      s.url(pathBackchannel),
		BackchannelTokenDeliveryModesSupported: []string{"poll"},
		BackchannelUserCodeParameterSupported:  false,
		AuthorizationDetailsTypesSupported:     []string{broker.TaskDetailType},
		DPoPSigningAlgsSupported:               s.proofs.Algorithms(),
		IntrospectionEndpoint:                  s.url(pathIntrospect),
		IntrospectionEndpointAuthMethods:       authMethods,
		IntrospectionEndpointAuthSigningAlgs:   assertionAlgs,
		RevocationEndpoint:                     s.url(pathRevoke),
		RevocationEndpointAuthMethods:          authMethods,
		RevocationEndpointAuthSigningAlgs:      assertionAlgs,
		SubjectTypesSupported:                  []string{"public"},
		IDTokenSigningAlgsSupported:            signing,
		DPoPBoundAccessTokensRequired:          s.requireDPoP,
		ProtectedResources:                     s.protectedResources(),
	}
}

// protectedResources lists the configured resources' URIs.
func (s *Server) protectedResources() []string {
	var out []string
	for _, r := range s.svc.Config().Resources {
		out = append(out, r.URI)
	}
	return out
}

// scopes lists openid, every scope of every configured resource, and the
// revocation feed's scopes when resource servers may ask for them.
func (s *Server) scopes() []string {
	out := []string{broker.ScopeOpenID}
	if len(s.opts.ResourceClients) > 0 {
		out = append(out, broker.ScopeSSFRead, broker.ScopeSSFManage)
	}
	for _, r := range s.svc.Config().Resources {
		for _, sc := range r.Scopes {
			if !slices.Contains(out, sc.Name) {
				out = append(out, sc.Name)
			}
		}
	}
	return out
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, s.Metadata())
}

// serveJWKS serves the current and retired signing keys. Resource servers
// refetch on an unknown kid, so a short cache lifetime is enough.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, s.svc.JWKS())
}

// serveHealth answers 200 when the store answers, 503 when it does not.
// A frozen issuer is healthy: freezing is an operator's decision.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	state := s.svc.IssuerState()
	body := map[string]any{"status": "ok", "frozen": state.Frozen, "issuer": s.issuer}
	if err := s.svc.Ping(ctx); err != nil {
		s.log.Error("health check: store does not answer", "err", err)
		body["status"] = "unavailable"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}
