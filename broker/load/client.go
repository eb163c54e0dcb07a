package load

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
)

// Grant and assertion types, as the wire spells them.
const (
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	grantTypeCIBA          = "urn:openid:params:grant-type:ciba"
	grantTypeClient        = "client_credentials"
	// assertionLifetime covers presigning, a scenario of up to
	// MaxDuration and the run before it, within the server's 5 minutes.
	assertionLifetime = 4 * time.Minute
)

// MaxDuration bounds a scenario: presigned DPoP proofs must still be
// inside the server's 60 s acceptance window when the last is used.
const MaxDuration = 30 * time.Second

// client is one caller's signing material: an agent's or the resource
// server's key, and (for an agent) the key its tokens are bound to.
type client struct {
	id     string
	signer jose.Signer
	dpop   *dpop.Signer
	// dpopKey is the private key of dpop, for guard processes that
	// present the client's token with proofs of their own.
	dpopKey jose.JSONWebKey
}

// newClient makes the signers of a client: its assertions with its own
// key, its DPoP proofs with a fresh key of the same algorithm.
func newClient(k *agent.Key) (*client, error) {
	alg := jose.SignatureAlgorithm(k.JWK.Algorithm)
	if alg == "" {
		alg = jose.EdDSA
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.JWK.Key},
		(&jose.SignerOptions{}).WithType("client-authentication+jwt").WithHeader(jose.HeaderKey("kid"), k.JWK.KeyID))
	if err != nil {
		return nil, fmt.Errorf("load: assertion signer for %s: %w", k.AgentID, err)
	}
	var priv crypto.Signer
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("algorithm %s is not one the load clients use (EdDSA, ES256)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("load: DPoP key for %s: %w", k.AgentID, err)
	}
	ds, err := dpop.NewSigner(priv, alg)
	if err != nil {
		return nil, fmt.Errorf("load: DPoP signer for %s: %w", k.AgentID, err)
	}
	return &client{id: k.AgentID, signer: signer, dpop: ds, dpopKey: jose.JSONWebKey{Key: priv, Algorithm: string(alg)}}, nil
}

// assertion makes a client assertion (RFC 7523) for the issuer, used once.
func (c *client) assertion(issuer string) (string, error) {
	now := time.Now()
	var id [16]byte
	_, _ = rand.Read(id[:])
	raw, err := jwt.Signed(c.signer).Claims(jwt.Claims{
		Issuer: c.id, Subject: c.id, Audience: jwt.Audience{issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)),
		ID: base64.RawURLEncoding.EncodeToString(id[:]),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("load: sign assertion for %s: %w", c.id, err)
	}
	return raw, nil
}

// endpoints are the parts of a provider's metadata the scenarios call.
type endpoints struct {
	issuer, backchannel, token, introspect, revocation string
}

// discover reads the provider's OpenID discovery document, which writ
// and oidc-provider both serve, for the endpoints the scenarios call.
func discover(ctx context.Context, hc *http.Client, issuer string) (endpoints, error) {
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return endpoints{}, fmt.Errorf("load: discover %s: %w", issuer, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return endpoints{}, fmt.Errorf("load: discover %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return endpoints{}, fmt.Errorf("load: discover %s: status %d %v", where, resp.StatusCode, err)
	}
	var m struct {
		Issuer        string `json:"issuer"`
		Backchannel   string `json:"backchannel_authentication_endpoint"`
		Token         string `json:"token_endpoint"`
		Introspection string `json:"introspection_endpoint"`
		Revocation    string `json:"revocation_endpoint"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return endpoints{}, fmt.Errorf("load: discover %s: %w", where, err)
	}
	switch {
	case m.Issuer != issuer:
		return endpoints{}, fmt.Errorf("load: %s names issuer %q, not %q", where, m.Issuer, issuer)
	case m.Introspection == "" || m.Backchannel == "" || m.Token == "":
		return endpoints{}, fmt.Errorf("load: %s advertises no introspection, backchannel or token endpoint", issuer)
	}
	return endpoints{issuer: m.Issuer, backchannel: m.Backchannel, token: m.Token, introspect: m.Introspection,
		revocation: m.Revocation}, nil
}

// oauthAnswer is the union of the JSON answers the scenarios read.
type oauthAnswer struct {
	AuthReqID   string `json:"auth_req_id"`
	Interval    int64  `json:"interval"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Active      *bool  `json:"active"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// post sends a form with extra headers (name, value, ...) and decodes the
// JSON answer. A non-200 answer is an error naming the OAuth error; one
// of slow_down is errThrottled, one of authorization_pending errPending.
func post(ctx context.Context, hc *http.Client, endpoint string, form url.Values, header ...string) (*oauthAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", endpoint, err)
	}
	var a oauthAnswer
	_ = json.Unmarshal(body, &a)
	if resp.StatusCode != http.StatusOK {
		switch a.Error {
		case "slow_down":
			return nil, fmt.Errorf("%w: %s", errThrottled, a.Description)
		case "authorization_pending":
			return nil, fmt.Errorf("%w: %s", errPending, a.Description)
		}
		return nil, fmt.Errorf("%s: %d %s: %s", endpoint, resp.StatusCode, a.Error, a.Description)
	}
	return &a, nil
}

// authed adds client authentication by assertion to form.
func authed(assertion string, form url.Values) url.Values {
	form.Set("client_assertion_type", assertionTypeJWTBearer)
	form.Set("client_assertion", assertion)
	return form
}
