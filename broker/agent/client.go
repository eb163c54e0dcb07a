package agent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Assertion and grant types the SDK speaks.
const (
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	grantTypeCIBA          = "urn:openid:params:grant-type:ciba"
	// assertionLifetime is short: each assertion is used once.
	assertionLifetime = 60 * time.Second
	maxResponseBytes  = 1 << 20
)

// Metadata is the part of writ's authorization server metadata (RFC 8414)
// the SDK uses.
type Metadata struct {
	Issuer                             string   `json:"issuer"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	BackchannelAuthenticationEndpoint  string   `json:"backchannel_authentication_endpoint"`
	RevocationEndpoint                 string   `json:"revocation_endpoint"`
	IntrospectionEndpoint              string   `json:"introspection_endpoint"`
	JWKSURI                            string   `json:"jwks_uri"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	DPoPSigningAlgValuesSupported      []string `json:"dpop_signing_alg_values_supported"`
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported"`
	DPoPBoundAccessTokensRequired      bool     `json:"dpop_bound_access_tokens_required"`
}

// Options tune a Client. The zero value is usable.
type Options struct {
	// HTTPClient talks to writ; http.DefaultClient when nil. Its Transport
	// is also the base of the DPoP transport for resource servers.
	HTTPClient *http.Client
	// DPoPKey, when set, is the key every task's token is bound to
	// (a crypto.Signer or *jose.JSONWebKey, see dpop.NewSigner), with
	// DPoPAlg. When nil each task gets a fresh Ed25519 key that lives only
	// in memory, so a token can never outlive its task's process.
	DPoPKey any
	DPoPAlg jose.SignatureAlgorithm
	// MaxStepUps bounds the step-ups of one task and its follow-ons
	// (default 3; negative: none at all).
	MaxStepUps int
	// LoginHint is the approver queue requests name when they name none
	// (default "oncall").
	LoginHint string
	// Now is the clock for assertions and deadlines; time.Now when nil.
	Now func() time.Time
	// Logger receives debug logs of polls; nothing is logged when nil.
	Logger *slog.Logger
}

// Client is an agent's connection to writ: it knows writ's endpoints and
// holds the agent's key. It is safe for concurrent use.
type Client struct {
	key    *Key
	meta   Metadata
	http   *http.Client
	opts   Options
	signer jose.Signer
	now    func() time.Time
	log    *slog.Logger
	// slowDownStep is what slow_down adds to the interval: 5 s (CIBA §11).
	slowDownStep time.Duration
}

// New discovers writ at issuer (its public URL; "" means key.Issuer) and
// returns a client for the agent key.
func New(ctx context.Context, issuer string, key *Key, opts Options) (*Client, error) {
	if key == nil {
		return nil, errors.New("agent: a key is required")
	}
	if issuer == "" {
		issuer = key.Issuer
	}
	if issuer == "" {
		return nil, errors.New("agent: writ's URL is required (the key file names none)")
	}
	c := &Client{key: key, http: opts.HTTPClient, opts: opts, now: opts.Now, log: opts.Logger, slowDownStep: 5 * time.Second}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	priv, alg, err := key.signer()
	if err != nil {
		return nil, err
	}
	c.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv},
		(&jose.SignerOptions{}).WithType("client-authentication+jwt").WithHeader(jose.HeaderKey("kid"), key.JWK.KeyID))
	if err != nil {
		return nil, fmt.Errorf("agent: assertion signer: %w", err)
	}
	if c.meta, err = Discover(ctx, c.http, issuer); err != nil {
		return nil, err
	}
	return c, nil
}

// Discover fetches and checks writ's metadata (RFC 8414): the
// oauth-authorization-server document, or the OpenID configuration.
// The issuer it names must be exactly issuer (§3.3).
func Discover(ctx context.Context, hc *http.Client, issuer string) (Metadata, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return Metadata{}, fmt.Errorf("agent: issuer %q is not an absolute URL", issuer)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	candidates := []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
	}
	var errs []error
	for _, where := range candidates {
		var m Metadata
		if err := getJSON(ctx, hc, where, &m); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case m.Issuer != issuer:
			return Metadata{}, fmt.Errorf("agent: %s names issuer %q, not %q", where, m.Issuer, issuer)
		case m.TokenEndpoint == "" || m.BackchannelAuthenticationEndpoint == "":
			return Metadata{}, fmt.Errorf("agent: %s has no token or backchannel authentication endpoint; is it writ?", where)
		}
		return m, nil
	}
	return Metadata{}, fmt.Errorf("agent: discover %s: %w", issuer, errors.Join(errs...))
}

// Metadata returns writ's metadata as discovered.
func (c *Client) Metadata() Metadata { return c.meta }

// AgentID returns the agent's client id.
func (c *Client) AgentID() string { return c.key.AgentID }

// assertion makes a fresh client assertion (RFC 7523): iss = sub = the
// agent, aud = the issuer, a minute to live, a jti used once.
func (c *Client) assertion() (string, error) {
	now := c.now()
	var id [16]byte
	_, _ = rand.Read(id[:])
	claims := jwt.Claims{
		Issuer: c.key.AgentID, Subject: c.key.AgentID, Audience: jwt.Audience{c.meta.Issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)),
		ID: base64.RawURLEncoding.EncodeToString(id[:]),
	}
	raw, err := jwt.Signed(c.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("agent: sign client assertion: %w", err)
	}
	return raw, nil
}

// post sends form to endpoint with client authentication, and decodes a
// 200 JSON answer into out (nil: no body expected). OAuth error answers
// come back as *Error. header, when set, adds request headers.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, header http.Header, out any) (*http.Response, error) {
	a, err := c.assertion()
	if err != nil {
		return nil, err
	}
	form.Set("client_assertion_type", assertionTypeJWTBearer)
	form.Set("client_assertion", a)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent: POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp, fmt.Errorf("agent: read answer of %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp, decodeError(resp, body)
	}
	if out == nil {
		return resp, nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp, fmt.Errorf("agent: answer of %s is not the expected JSON: %w", endpoint, err)
	}
	return resp, nil
}

// decodeError reads an RFC 6749 error body, or describes the status.
func decodeError(resp *http.Response, body []byte) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" && json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &Error{Code: e.Error, Description: e.Description, Status: resp.StatusCode}
	}
	return &Error{Code: "http_" + fmt.Sprint(resp.StatusCode), Description: http.StatusText(resp.StatusCode), Status: resp.StatusCode}
}

func getJSON(ctx context.Context, hc *http.Client, where string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", where, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", where, err)
	}
	return nil
}
