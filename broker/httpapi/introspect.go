package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/writhq/writ/broker"
)

// maxTokenBytes bounds a token presented for introspection or revocation;
// writ's tokens are well under 2 KiB.
const maxTokenBytes = 16 << 10

// IntrospectionResponse is RFC 7662 §2.2's answer. For an inactive token
// only Active is sent. TokenType is DPoP for a DPoP-bound token, whose
// thumbprint is in Cnf (RFC 9449 §6.2).
type IntrospectionResponse struct {
	Active               bool                         `json:"active"`
	Scope                string                       `json:"scope,omitempty"`
	ClientID             string                       `json:"client_id,omitempty"`
	TokenType            string                       `json:"token_type,omitempty"`
	Exp                  int64                        `json:"exp,omitempty"`
	Iat                  int64                        `json:"iat,omitempty"`
	Nbf                  int64                        `json:"nbf,omitempty"`
	Sub                  string                       `json:"sub,omitempty"`
	Aud                  string                       `json:"aud,omitempty"`
	Iss                  string                       `json:"iss,omitempty"`
	JTI                  string                       `json:"jti,omitempty"`
	Cnf                  *broker.Confirmation         `json:"cnf,omitempty"`
	SID                  string                       `json:"sid,omitempty"`
	AuthorizationDetails []broker.AuthorizationDetail `json:"authorization_details,omitempty"`
	Writ                 *broker.WritClaims           `json:"writ,omitempty"`
}

// serveIntrospect answers whether a token is active (RFC 7662), for an
// authenticated resource server, and records the call as a use of the
// token's grant. A token for an audience the caller does not serve is
// inactive to it, as are expired, revoked, frozen-epoch, foreign and
// malformed tokens: {"active":false} and nothing more.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	f, ferr := readForm(w, r, s.opts.MaxBodyBytes)
	if ferr != nil {
		writeOAuthError(w, ferr)
		return
	}
	client, aerr := s.authenticateIntrospector(r, f)
	if aerr != nil {
		writeOAuthError(w, aerr)
		return
	}
	if client.Resource == nil {
		// Agents hold tokens; they do not judge them. Letting them ask
		// would also count their questions as uses of their grants.
		writeOAuthError(w, &oauthError{Status: http.StatusForbidden, Code: broker.ReasonUnauthorizedClient,
			Description: "client " + client.ID + " is an agent; introspection is for resource servers"})
		return
	}
	raw := f.get("token")
	if raw == "" {
		writeOAuthError(w, badRequest("token is required"))
		return
	}
	if len(raw) > maxTokenBytes {
		writeIntrospection(w, inactiveBody)
		return
	}
	// The audience is checked before a use is recorded: a resource server
	// asking about another's token learns nothing and counts for nothing.
	in, err := s.svc.IntrospectFor(r.Context(), raw, client.Resource.mayIntrospect)
	if err != nil {
		s.fail(w, r, atIntrospect, err)
		return
	}
	if !in.Active {
		if in.JTI != "" {
			s.log.Debug("introspection: inactive token", "client", client.ID, "jti", in.JTI, "why", in.Why)
		}
		writeIntrospection(w, inactiveBody)
		return
	}
	if b, ok := s.introspections.get(in); ok {
		writeIntrospection(w, b)
		return
	}
	c := in.Claims
	resp := IntrospectionResponse{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: "Bearer",
		Exp: c.Expiry, Iat: c.IssuedAt, Nbf: c.NotBefore, Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer,
		JTI: c.JTI, Cnf: c.Cnf, SID: c.SID, AuthorizationDetails: c.Details, Writ: &c.Writ,
	}
	if c.Cnf != nil && c.Cnf.JKT != "" {
		resp.TokenType = "DPoP"
	}
	b, err := encodeIntrospection(resp)
	if err != nil {
		writeJSON(w, http.StatusOK, resp) // answers the encoding error as writeJSON does
		return
	}
	s.introspections.put(in, b)
	writeIntrospection(w, b)
}

// introspectionBody is an encoded introspection response, with its
// Content-Length header value.
type introspectionBody struct {
	json   []byte
	length []string
}

// inactiveBody is the whole answer about any inactive token.
var inactiveBody = mustEncodeIntrospection(IntrospectionResponse{Active: false})

func mustEncodeIntrospection(resp IntrospectionResponse) introspectionBody {
	b, err := encodeIntrospection(resp)
	if err != nil {
		panic(err)
	}
	return b
}

// encodeIntrospection encodes resp exactly as writeJSON would.
func encodeIntrospection(resp IntrospectionResponse) (introspectionBody, error) {
	b, err := json.Marshal(resp)
	if err != nil {
		return introspectionBody{}, err
	}
	b = append(b, '\n')
	return introspectionBody{json: b, length: []string{strconv.Itoa(len(b))}}, nil
}

// Header values of every introspection response. The slices are shared
// by all responses: header values are replaced or appended to, never
// written in place.
var (
	headerJSON     = []string{"application/json"}
	headerNoStore  = []string{"no-store"}
	headerNoCache  = []string{"no-cache"}
	introspectKeys = [...]string{"Content-Type", "Cache-Control", "Pragma", "Content-Length"}
)

// writeIntrospection writes a 200 response with b, with the headers
// writeJSON sets, without allocating them for each response.
func writeIntrospection(w http.ResponseWriter, b introspectionBody) {
	h := w.Header()
	h[introspectKeys[0]] = headerJSON
	if len(h[introspectKeys[1]]) == 0 {
		h[introspectKeys[1]] = headerNoStore
		h[introspectKeys[2]] = headerNoCache
	}
	h[introspectKeys[3]] = b.length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.json)
}

// introspectionBodies keeps the encoded answer about each active token
// recently asked about, so asking again costs no encoding. An answer is
// reused only for the very claims and grant it was made from: the broker
// hands out the same shared, never modified Token and Grant for a token
// whose grant has not changed since (broker.Introspection), and any write
// of the grant gives a new Grant, so a changed grant is encoded afresh.
// The zero value is ready to use.
type introspectionBodies struct {
	mu sync.RWMutex
	m  map[string]cachedIntrospection // by jti
}

type cachedIntrospection struct {
	token *broker.AccessClaims
	grant *broker.Grant
	body  introspectionBody
}

// maxIntrospectionBodies bounds the cache; a body is about a kilobyte.
const maxIntrospectionBodies = 4096

func (c *introspectionBodies) get(in *broker.Introspection) (introspectionBody, bool) {
	c.mu.RLock()
	e, ok := c.m[in.JTI]
	c.mu.RUnlock()
	if !ok || e.token != in.Token || e.grant != in.Grant || in.Token == nil || in.Grant == nil {
		return introspectionBody{}, false
	}
	return e.body, true
}

func (c *introspectionBodies) put(in *broker.Introspection, b introspectionBody) {
	if in.Token == nil || in.Grant == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedIntrospection)
	}
	if _, ok := c.m[in.JTI]; !ok && len(c.m) >= maxIntrospectionBodies {
		for jti := range c.m { // an arbitrary one
			delete(c.m, jti)
			break
		}
	}
	c.m[in.JTI] = cachedIntrospection{token: in.Token, grant: in.Grant, body: b}
}

// introspectScopes are the scopes a client token needs to introspect.
var introspectScopes = []string{broker.ScopeIntrospect}

// authenticateIntrospector authenticates the caller of the introspection
// endpoint: a client assertion in the form, as everywhere, or (RFC 7662
// §2.1) a client-credentials access token with the introspect scope as a
// Bearer credential. The token is verified once and cached, so a busy
// resource server does not pay a signature check per call.
func (s *Server) authenticateIntrospector(r *http.Request, f form) (*Client, *oauthError) {
	raw, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	// A client token verified before is known by a lookup: no header to
	// decode, no signature to check.
	var known *broker.ClientClaims
	if bearer {
		known, _ = s.svc.KnownClientToken(raw)
	}
	if !bearer || (known == nil && !IsAccessToken(raw)) {
		return s.authenticate(r.Context(), r, f, s.url(pathIntrospect))
	}
	if f.has("client_assertion") || f.has("client_assertion_type") || f.has("client_secret") {
		return nil, badRequest("use one way to authenticate: a Bearer access token or a client assertion, not both")
	}
	var c *Client
	var err error
	if known != nil {
		c, err = s.clientOfToken(known, introspectScopes)
	} else {
		c, err = s.AuthenticateClientToken(raw, introspectScopes)
	}
	if err != nil {
		s.metrics.clientAuthFailures.WithLabelValues(errInvalidClient).Inc()
		status := http.StatusUnauthorized
		if broker.ErrorCode(err) == broker.EFORBIDDEN {
			status = http.StatusForbidden
		}
		code := broker.ErrorReason(err) // invalid_token or insufficient_scope (RFC 6750 §3.1)
		if code == "" {
			code = broker.ReasonInvalidToken
		}
		return nil, &oauthError{Status: status, Code: code, Description: broker.ErrorMessage(err)}
	}
	return c, nil
}
