package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
)

// Client assertion types (RFC 7523 §2.2; draft-ietf-oauth-spiffe-client-auth).
const (
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	AssertionTypeSPIFFE    = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
)

// Client authentication methods, as Client.Method reports them.
const (
	MethodPrivateKeyJWT = "private_key_jwt" // an assertion signed with a configured key
	MethodWorkload      = "workload"        // a JWT from the configured workload issuer
)

// Bounds on client assertions.
const (
	// MaxAssertionLifetime is how far ahead of now an assertion's exp may
	// be: long-lived assertions are credentials, not proofs.
	MaxAssertionLifetime = 5 * time.Minute
	assertionLeeway      = 10 * time.Second
	maxAssertionBytes    = 8 << 10
	maxKeysTried         = 4
)

// AssertionAlgs are the signature algorithms accepted in client assertions:
// asymmetric only, never none or a MAC.
var AssertionAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.PS256, jose.RS256}

// ResourceClient is a resource server that may call the introspection
// endpoint. It authenticates as an OAuth client, exactly as an agent does:
// private_key_jwt with one of Keys (iss = sub = ID), or a workload JWT.
type ResourceClient struct {
	// ID is its client_id. By convention the resource URI it serves.
	ID string
	// Keys are the public keys its client assertions are signed with.
	Keys []jose.JSONWebKey
	// Workload is the federated identity that may stand in for Keys.
	Workload *broker.WorkloadIdentity
	// Audiences are the resources whose tokens it may introspect (a token
	// for any other audience is inactive to it); empty means [ID].
	Audiences []string
}

// mayIntrospect reports whether the resource client may learn about a
// token with audience aud.
func (rc *ResourceClient) mayIntrospect(aud string) bool {
	if len(rc.Audiences) == 0 {
		return aud == rc.ID
	}
	return slices.Contains(rc.Audiences, aud)
}

// Client is an authenticated caller: an agent or a resource server.
type Client struct {
	ID       string
	Method   string          // MethodPrivateKeyJWT or MethodWorkload
	Agent    *broker.Agent   // set when the caller is an agent
	Resource *ResourceClient // set when the caller is a resource server
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
}

// authError is an invalid_client refusal (RFC 6749 §5.2: 401).
func authError(format string, args ...any) *oauthError {
	return &oauthError{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: fmt.Sprintf(format, args...)}
}

// authenticate authenticates the caller of a request with form f at the
// endpoint whose URL is endpointURL. Exactly one method may be used
// (RFC 6749 §2.3): writ accepts only client assertions, so HTTP Basic
// and client_secret are refused by name.
func (s *Server) authenticate(ctx context.Context, r *http.Request, f form, endpointURL string) (*Client, *oauthError) {
	c, err := s.authenticateForm(ctx, r, f, endpointURL)
	if err != nil {
		s.metrics.clientAuthFailures.WithLabelValues(err.Code).Inc()
	}
	return c, err
}

func (s *Server) authenticateForm(ctx context.Context, r *http.Request, f form, endpointURL string) (*Client, *oauthError) {
	if r.Header.Get("Authorization") != "" {
		return nil, authError("writ does not accept the Authorization header here; authenticate with a client assertion (private_key_jwt)")
	}
	if f.has("client_secret") {
		return nil, authError("writ has no client secrets; authenticate with a client assertion (private_key_jwt)")
	}
	typ, assertion := f.get("client_assertion_type"), f.get("client_assertion")
	switch {
	case typ == "" && assertion == "":
		return nil, authError("client authentication is required: send client_assertion_type and client_assertion")
	case typ == "" || assertion == "":
		return nil, authError("client_assertion_type and client_assertion go together")
	}
	c, err := s.AuthenticateAssertion(ctx, typ, assertion, f.get("client_id"), endpointURL)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, authError("%s", err.Error())
	}
	return c, nil
}

// AuthenticateAssertion authenticates a client by a client assertion
// (RFC 7521 §4.2) presented at endpointURL. clientID is the client_id the
// request named, "" if none. It returns the client, or an error whose
// message may be shown to the caller (invalid_client).
//
// Two kinds of assertion are accepted, told apart by their issuer:
//   - private_key_jwt (RFC 7523): iss = sub = the client id of an agent or
//     resource client, aud the issuer or an endpoint URL, exp at most
//     MaxAssertionLifetime ahead, a jti never seen before, signed with one
//     of the client's configured keys;
//   - a workload identity (type jwt-spiffe, or jwt-bearer): a JWT from the
//     client's configured workload issuer, verified through that issuer's
//     OpenID discovery document with go-oidc, mapped to the client by its
//     exact sub. Such tokens are reusable bearer credentials (a SPIFFE
//     JWT-SVID is fetched once and used until it expires), so their jti is
//     not required to be fresh.
func (s *Server) AuthenticateAssertion(ctx context.Context, assertionType, assertion, clientID, endpointURL string) (*Client, error) {
	if assertionType != AssertionTypeJWTBearer && assertionType != AssertionTypeSPIFFE {
		return nil, authError("client_assertion_type %q is not supported; use %s", clip(assertionType), AssertionTypeJWTBearer)
	}
	if len(assertion) > maxAssertionBytes || strings.Count(assertion, ".") != 2 {
		return nil, authError("client_assertion is not a compact JWS")
	}
	// Parsed once, its claims decoded once, its signature verified once
	// (without decoding the payload again): this runs on every request.
	tok, err := jose.ParseSignedCompact(assertion, AssertionAlgs)
	if err != nil || len(tok.Signatures) != 1 {
		return nil, authError("client_assertion is not a JWT signed with one of %s", algList(AssertionAlgs))
	}
	var c assertionClaims
	if err := josejson.Unmarshal(tok.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, authError("client_assertion claims are not a JSON object of JWT claims")
	}
	if assertionType == AssertionTypeJWTBearer && c.Issuer != "" && c.Issuer == c.Subject {
		if client, ok := s.keyClient(c.Issuer); ok {
			return s.verifyPrivateKeyJWT(tok, &c, client, clientID, endpointURL)
		}
	}
	if client, ok := s.workloadClient(c.Issuer, c.Subject); ok {
		return s.verifyWorkloadJWT(ctx, assertion, client, clientID)
	}
	if c.Issuer != "" && c.Issuer == c.Subject {
		return nil, authError("client %q is not registered with keys", clip(c.Issuer))
	}
	return nil, authError("client_assertion names no registered client (iss %q, sub %q)", clip(c.Issuer), clip(c.Subject))
}

// keyClient returns the agent or resource client with id that has keys.
func (s *Server) keyClient(id string) (*Client, bool) {
	if a, ok := s.svc.AgentConfig(id); ok && len(a.Keys) > 0 {
		return &Client{ID: a.ID, Method: MethodPrivateKeyJWT, Agent: a}, true
	}
	if rc, ok := s.resourceClient(id); ok && len(rc.Keys) > 0 {
		return &Client{ID: rc.ID, Method: MethodPrivateKeyJWT, Resource: rc}, true
	}
	return nil, false
}

// workloadClient returns the one client whose workload identity is (iss, sub).
func (s *Server) workloadClient(iss, sub string) (*Client, bool) {
	if iss == "" || sub == "" {
		return nil, false
	}
	var found []*Client
	for i := range s.svc.Config().Agents {
		a := &s.svc.Config().Agents[i]
		if w := a.Workload; w != nil && w.Issuer == iss && w.Subject == sub {
			found = append(found, &Client{ID: a.ID, Method: MethodWorkload, Agent: a})
		}
	}
	for i := range s.opts.ResourceClients {
		rc := &s.opts.ResourceClients[i]
		if w := rc.Workload; w != nil && w.Issuer == iss && w.Subject == sub {
			found = append(found, &Client{ID: rc.ID, Method: MethodWorkload, Resource: rc})
		}
	}
	if len(found) != 1 {
		// Two clients with one identity is a configuration mistake; refuse
		// rather than pick one.
		return nil, false
	}
	return found[0], true
}

func (c *Client) keys() []jose.JSONWebKey {
	if c.Agent != nil {
		return c.Agent.Keys
	}
	return c.Resource.Keys
}

func (c *Client) workload() *broker.WorkloadIdentity {
	if c.Agent != nil {
		return c.Agent.Workload
	}
	return c.Resource.Workload
}

// verifyPrivateKeyJWT checks an RFC 7523 client assertion of client.
// The cheap checks come first, so a flood of junk costs no signature
// verifications; the jti is recorded last, so only a verified assertion
// can use up its jti.
func (s *Server) verifyPrivateKeyJWT(tok *jose.JSONWebSignature, c *assertionClaims, client *Client, clientID, endpointURL string) (*Client, error) {
	now := s.now()
	h := tok.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "" && !assertionTyp(typ) {
		return nil, authError("client_assertion typ is %q; a client assertion is a JWT or client-authentication+jwt", clip(typ))
	}
	if clientID != "" && clientID != client.ID {
		return nil, authError("client_id %q does not match the client assertion's iss", clip(clientID))
	}
	if !s.assertionAudienceOK(c.Audience, endpointURL) {
		return nil, authError("client_assertion aud must be the issuer %s", s.issuer)
	}
	switch {
	case c.Expiry == nil:
		return nil, authError("client_assertion has no exp")
	case now.After(c.Expiry.Time().Add(assertionLeeway)):
		return nil, authError("client_assertion expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime + assertionLeeway)):
		return nil, authError("client_assertion exp is more than %s ahead; make a fresh, short-lived assertion per request", MaxAssertionLifetime)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionLeeway)):
		return nil, authError("client_assertion is not valid yet (nbf)")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionLeeway)):
		return nil, authError("client_assertion iat is in the future")
	case c.ID == "" || len(c.ID) > 256:
		return nil, authError("client_assertion needs a jti of at most 256 characters, unique per assertion")
	}
	if err := verifyWithKeys(tok, h, client.keys()); err != nil {
		return nil, authError("client_assertion signature does not verify with a key registered for %s", client.ID)
	}
	// Only a verified assertion is counted against its client: an
	// unsigned flood naming another client cannot spend that client's
	// allowance.
	if oe := s.throttleClient(client, now); oe != nil {
		return nil, oe
	}
	// Remember the jti until the assertion can no longer be accepted. The
	// replay cache runs on the real clock; carry the remaining lifetime
	// over. Each client has its own quota of remembered jtis.
	remaining := c.Expiry.Time().Add(assertionLeeway).Sub(now)
	replay := s.assertionReplay
	if client.Resource != nil {
		// Resource servers remember their jtis apart from agents: neither
		// can fill the other's cache.
		replay = s.resourceAssertionReplay
	}
	switch err := replay.Record(client.ID, c.ID, time.Now().Add(remaining)); dpop.Reason(err) {
	case "":
	case dpop.ReasonReplay:
		return nil, authError("client_assertion jti was already used; make a fresh assertion for every request")
	case dpop.ReasonReplayQuota:
		return nil, slowDown(MaxAssertionLifetime+assertionLeeway,
			"too many client assertions from %s in their lifetime; slow down", client.ID)
	default:
		s.log.Error("client assertion replay cache is full", "client", client.ID)
		return nil, &oauthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "the server cannot remember more client assertions right now; retry shortly", RetryAfter: 10 * time.Second}
	}
	return client, nil
}

// throttleClient takes one authentication from client's allowance, or
// answers 429 slow_down with the time until the next one is allowed.
func (s *Server) throttleClient(client *Client, now time.Time) *oauthError {
	if s.authLimit == nil {
		return nil
	}
	if ok, wait := s.authLimit.Allow(client.ID, now); !ok {
		return slowDown(wait, "client %s is authenticating too often; slow down", client.ID)
	}
	return nil
}

// slowDown is a 429 slow_down refusal asking the client to wait at least
// wait (whole seconds, at least one) before trying again.
func slowDown(wait time.Duration, format string, args ...any) *oauthError {
	return &oauthError{Status: http.StatusTooManyRequests, Code: broker.ReasonSlowDown,
		Description: fmt.Sprintf(format, args...), RetryAfter: max((wait + time.Second - 1).Truncate(time.Second), time.Second)}
}

// assertionTyp reports whether typ may head a client assertion. Other
// typ values (at+jwt, dpop+jwt, secevent+jwt) are other kinds of token and
// are refused, so one can never be replayed as another.
func assertionTyp(typ string) bool {
	typ = strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/"))
	return typ == "jwt" || typ == "client-authentication+jwt"
}

// assertionAudienceOK accepts the issuer (what clients SHOULD send) and,
// as CIBA §7.1 requires, the token and backchannel endpoint URLs, and the
// URL of the endpoint being called. Every audience named must be one of
// those: an assertion addressed to others as well is not ours alone.
func (s *Server) assertionAudienceOK(aud jwt.Audience, endpointURL string) bool {
	if len(aud) == 0 {
		return false
	}
	for _, a := range aud {
		switch a {
		case s.issuer, s.url(pathToken), s.url(pathBackchannel), endpointURL:
		default:
			return false
		}
	}
	return true
}

// verifyWithKeys verifies tok with the key its kid names, or without a kid
// with each key that fits the algorithm (a few at most).
func verifyWithKeys(tok *jose.JSONWebSignature, h jose.Header, keys []jose.JSONWebKey) error {
	tried := 0
	for i := range keys {
		k := &keys[i]
		if h.KeyID != "" && k.KeyID != h.KeyID && k.KeyID != "" {
			continue
		}
		if (k.Algorithm != "" && k.Algorithm != h.Algorithm) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if tried++; tried > maxKeysTried {
			break
		}
		if _, err := tok.Verify(k.Key); err == nil {
			return nil
		}
	}
	return errors.New("no key verifies the signature")
}

// verifyWorkloadJWT checks a JWT from client's workload issuer.
func (s *Server) verifyWorkloadJWT(ctx context.Context, raw string, client *Client, clientID string) (*Client, error) {
	if clientID != "" && clientID != client.ID {
		return nil, authError("client_id %q does not match the workload identity's client", clip(clientID))
	}
	w := client.workload()
	aud := w.Audience
	if aud == "" {
		aud = s.issuer
	}
	if err := s.workloads.verify(ctx, w.Issuer, aud, w.Subject, raw); err != nil {
		s.log.Info("workload identity refused", "client", client.ID, "issuer", w.Issuer, "err", err)
		return nil, authError("workload identity token refused: %s", err.Error())
	}
	if oe := s.throttleClient(client, s.now()); oe != nil {
		return nil, oe
	}
	return client, nil
}

func algList(algs []jose.SignatureAlgorithm) string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return strings.Join(out, ", ")
}

// The replay cache for assertion jtis is dpop's: the same bounded,
// fail-closed structure.
type replayCache = dpop.ReplayCache
