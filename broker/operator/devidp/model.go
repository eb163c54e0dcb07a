package devidp

import (
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is an authorization request waiting for its user.
type authRequest struct {
	id          string
	created     time.Time
	clientID    string
	redirectURI string
	state       string
	nonce       string
	scopes      []string
	respType    oidc.ResponseType
	respMode    oidc.ResponseMode
	challenge   *oidc.CodeChallenge

	subject  string
	done     bool
	authTime time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return amr(a.done) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func amr(done bool) []string {
	if done {
		return []string{"user"}
	}
	return nil
}

// refreshRequest is a refresh token presented at the token endpoint.
type refreshRequest struct{ *refreshToken }

var _ op.RefreshTokenRequest = refreshRequest{}

func (r refreshRequest) GetAMR() []string            { return r.amr }
func (r refreshRequest) GetAudience() []string       { return r.audience }
func (r refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r refreshRequest) GetClientID() string         { return r.clientID }
func (r refreshRequest) GetScopes() []string         { return r.scopes }
func (r refreshRequest) GetSubject() string          { return r.subject }
func (r refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// client is the one client the provider knows: writ's console. Public
// (native, PKCE, no secret) unless Options.ClientSecret is set.
type client struct {
	id       string
	secret   string
	lifetime time.Duration
	loginURL func(id string) string
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string { return c.id }

// RedirectURIs: a native client may use any port on a loopback redirect
// (RFC 8252 §7.3); op matches these ignoring the port.
func (c *client) RedirectURIs() []string {
	return []string{"http://127.0.0.1/callback", "http://[::1]/callback"}
}
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) ApplicationType() op.ApplicationType {
	if c.secret != "" {
		return op.ApplicationTypeWeb
	}
	return op.ApplicationTypeNative
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.secret != "" {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
}
func (c *client) LoginURL(id string) string           { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.lifetime }
func (c *client) DevMode() bool                       { return c.secret != "" }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool { return scope == "groups" }

// IDTokenUserinfoClaimsAssertion puts name, email and groups in the ID token
// itself, where writ reads them, as most providers do.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// globClient lets a confidential client use loopback redirects on any port,
// which op allows natively only for native clients.
type globClient struct{ *client }

func (globClient) RedirectURIGlobs() []string {
	return []string{"http://127.0.0.1:*/callback", "http://[::1]:*/callback"}
}
func (globClient) PostLogoutRedirectURIGlobs() []string { return nil }

// normalizeUserCode accepts a typed code in any case, with or without dash.
func normalizeUserCode(code string) string {
	code = strings.ToUpper(strings.TrimSpace(code))
	code = strings.NewReplacer("-", "", " ", "").Replace(code)
	if len(code) == 8 {
		return code[:4] + "-" + code[4:]
	}
	return code
}
