package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/ratelimit"
)

// Paths of the endpoints, relative to the public URL.
const (
	pathASMetadata   = "/.well-known/oauth-authorization-server"
	pathOIDCMetadata = "/.well-known/openid-configuration"
	pathJWKS         = "/jwks"
	pathBackchannel  = "/bc-authorize"
	pathToken        = "/token"
	pathIntrospect   = "/introspect"
	pathRevoke       = "/revoke"
	pathHealth       = "/healthz"
	pathMetrics      = "/metrics"
)

// Options configure a Server. Only the Service is required.
type Options struct {
	// PublicURL is the issuer: the URL agents and resource servers know
	// writ by, exactly as tokens carry it in iss. The endpoints are at
	// paths beneath it, and DPoP proofs' htu is checked against it, never
	// against Host or X-Forwarded-* headers. Default: the Service's issuer;
	// if both are set they must be equal.
	PublicURL string
	// DPoPWindow is how old a DPoP proof's iat may be (default
	// dpop.DefaultWindow); a proof is remembered for that long to refuse
	// its replay.
	DPoPWindow time.Duration
	// RequireDPoP refuses every token request without a DPoP proof, as
	// the configuration's require_dpop does.
	RequireDPoP bool
	// ResourceClients are the resource servers that may introspect tokens.
	ResourceClients []ResourceClient
	// Logger receives request errors; slog.Default() when nil. Tokens are
	// logged only as a short prefix and their jti.
	Logger *slog.Logger
	// Registry receives the API's metrics and is served at /metrics; a
	// new registry when nil. Other packages mounting routes on the same
	// Server register their collectors with it too.
	Registry *prometheus.Registry
	// MaxBodyBytes caps request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// HTTPClient fetches workload issuers' discovery documents and keys;
	// http.DefaultClient when nil.
	HTTPClient *http.Client
	// Now is the clock; the Service's when nil.
	Now func() time.Time
	// ReplayEntries bounds each replay cache (DPoP proofs, client
	// assertions); dpop.DefaultReplayEntries when zero. One client may
	// hold 1/dpop.DefaultClientShare of each; past that it is answered
	// 429 slow_down, and no other client is affected.
	ReplayEntries int
	// ClientAuth limits how often one client may authenticate: every
	// verified client assertion (or workload token) takes one event, and a
	// client past its limit is answered 429 slow_down with Retry-After, so
	// a flooding client cannot crowd out the others.
	// DefaultClientAuthLimit when zero; a negative PerSecond disables it.
	ClientAuth ratelimit.Limit
	// MetricsToken, when set, is the bearer token /metrics requires
	// (compared in constant time); without it /metrics is open.
	MetricsToken string
	// MetricsElsewhere leaves /metrics off the public API: serve
	// MetricsHandler on a listener of its own (writ serve --metrics-listen).
	MetricsElsewhere bool
}

// DefaultClientAuthLimit is the per-client authentication limit: far above
// what an agent polling for tokens needs, far below what fills the replay
// cache (a client may hold 1/16 of it, 32,768 assertions by default, and
// at 50 a second it holds at most 15,600 in their 5-minute lifetime).
var DefaultClientAuthLimit = ratelimit.Limit{PerSecond: 50, Burst: 100}

// DefaultResourceAuthLimit is the per-client authentication limit of a
// configured resource server, which may introspect with a fresh client
// assertion for every token it checks: it is held to its own bucket, far
// above an agent's, and still to its share of the replay cache (past that,
// 429 slow_down; the cached client-credentials token is the fast path).
var DefaultResourceAuthLimit = ratelimit.Limit{PerSecond: 10_000, Burst: 10_000}

// resourceAuthLimit gives configured resource servers (ResourceClients,
// as authentication knows them) their own limit.
func (s *Server) resourceAuthLimit(client string) (ratelimit.Limit, bool) {
	if _, ok := s.resourceClient(client); ok {
		return DefaultResourceAuthLimit, true
	}
	return ratelimit.Limit{}, false
}

// resourceClient returns the configured resource server with id.
func (s *Server) resourceClient(id string) (*ResourceClient, bool) {
	for i := range s.opts.ResourceClients {
		if rc := &s.opts.ResourceClients[i]; rc.ID == id {
			return rc, true
		}
	}
	return nil, false
}

// Server is writ's agent- and resource-server-facing HTTP API. It is an
// http.Handler; mount it at the root of the public URL's host (behind a
// proxy, keep the public URL's path). Other packages add routes to the
// same mux with Handle.
type Server struct {
	svc     *broker.Service
	opts    Options
	issuer  string
	prefix  string // the public URL's path, without a trailing slash
	now     func() time.Time
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler

	registry        *prometheus.Registry
	metrics         *metrics
	proofs          *dpop.Verifier
	assertionReplay *replayCache
	// resourceAssertionReplay remembers resource servers' assertion jtis,
	// apart from agents', each server holding up to half of it: one that
	// introspects with an assertion per token needs far more room than an
	// agent, and must not take it from them.
	resourceAssertionReplay *replayCache
	authLimit               *ratelimit.Limiter // nil: no limit
	workloads               *workloadVerifiers
	requireDPoP             bool
	// introspections caches the answers about active tokens (introspect.go).
	introspections introspectionBodies
}

// New returns the HTTP API over svc.
func New(svc *broker.Service, opts Options) (*Server, error) {
	if svc == nil {
		return nil, errors.New("httpapi: a Service is required")
	}
	issuer := opts.PublicURL
	switch {
	case issuer == "":
		issuer = svc.Issuer()
	case svc.Issuer() != "" && svc.Issuer() != issuer:
		return nil, fmt.Errorf("httpapi: public URL %q is not the service's issuer %q; tokens would not verify", issuer, svc.Issuer())
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("httpapi: public URL %q must be an absolute http(s) URL without query, fragment or userinfo", issuer)
	}
	s := &Server{
		svc:    svc,
		opts:   opts,
		issuer: issuer,
		prefix: strings.TrimSuffix(u.EscapedPath(), "/"),
		now:    opts.Now,
		log:    opts.Logger,
		mux:    http.NewServeMux(),
	}
	if s.now == nil {
		s.now = svc.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.opts.MaxBodyBytes <= 0 {
		s.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s.registry = opts.Registry
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.metrics, err = newMetrics(s.registry, svc); err != nil {
		return nil, fmt.Errorf("httpapi: register metrics: %w", err)
	}
	if err := registerStoreMetrics(s.registry, svc); err != nil {
		return nil, fmt.Errorf("httpapi: register store metrics: %w", err)
	}
	s.requireDPoP = opts.RequireDPoP || svc.Config().RequireDPoP
	s.proofs = &dpop.Verifier{Window: opts.DPoPWindow, Now: s.now, Replay: dpop.NewReplayCache(opts.ReplayEntries)}
	s.assertionReplay = dpop.NewReplayCache(opts.ReplayEntries)
	resourceEntries := opts.ReplayEntries
	if resourceEntries <= 0 {
		resourceEntries = dpop.DefaultReplayEntries
	}
	s.resourceAssertionReplay = dpop.NewReplayCacheQuota(resourceEntries, resourceEntries/2)
	switch lim := opts.ClientAuth; {
	case lim.PerSecond < 0:
	case lim.PerSecond == 0:
		s.authLimit = ratelimit.New(DefaultClientAuthLimit, s.resourceAuthLimit)
	default:
		s.authLimit = ratelimit.New(lim, s.resourceAuthLimit)
	}
	s.workloads = newWorkloadVerifiers(opts.HTTPClient, s.now)
	if err := s.checkResourceClients(); err != nil {
		return nil, err
	}
	s.routes()
	s.handler = s.recoverPanics(s.mux)
	return s, nil
}

func (s *Server) checkResourceClients() error {
	seen := map[string]bool{}
	for _, rc := range s.opts.ResourceClients {
		switch {
		case rc.ID == "":
			return errors.New("httpapi: a resource client needs an ID")
		case seen[rc.ID]:
			return fmt.Errorf("httpapi: resource client %s is listed twice", rc.ID)
		case len(rc.Keys) == 0 && rc.Workload == nil:
			return fmt.Errorf("httpapi: resource client %s has neither keys nor a workload identity, so it could never authenticate", rc.ID)
		}
		if _, ok := s.svc.Config().Agent(rc.ID); ok {
			return fmt.Errorf("httpapi: resource client %s has the id of an agent", rc.ID)
		}
		seen[rc.ID] = true
	}
	return nil
}

// routes registers every endpoint. Endpoints have a second, method-less
// pattern that answers other methods with a JSON 405.
func (s *Server) routes() {
	route := func(method, path, name string, h http.HandlerFunc) {
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		s.mux.Handle(method+" "+path, s.metrics.instrument(name, h))
		s.mux.Handle(path, s.metrics.instrument(name, methodNotAllowed(allow)))
	}
	// RFC 8414 §3: the well-known segment goes before the issuer's path;
	// OpenID Connect Discovery §4 appends it to the issuer.
	route(http.MethodGet, pathASMetadata+s.prefix, "metadata", s.serveMetadata)
	route(http.MethodGet, s.prefix+pathOIDCMetadata, "metadata", s.serveMetadata)
	route(http.MethodGet, s.prefix+pathJWKS, "jwks", s.serveJWKS)
	route(http.MethodPost, s.prefix+pathBackchannel, "bc-authorize", s.serveBackchannel)
	route(http.MethodPost, s.prefix+pathToken, "token", s.serveToken)
	route(http.MethodPost, s.prefix+pathIntrospect, "introspect", s.serveIntrospect)
	route(http.MethodPost, s.prefix+pathRevoke, "revoke", s.serveRevoke)
	route(http.MethodGet, s.prefix+pathHealth, "healthz", s.serveHealth)
	route(http.MethodGet, s.prefix+pathReady, "readyz", s.serveReady)
	if !s.opts.MetricsElsewhere {
		s.mux.Handle("GET "+s.prefix+pathMetrics, s.MetricsHandler())
	}
	s.mux.Handle("/", s.metrics.instrument("other", http.HandlerFunc(notFound)))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Handle adds a route to the server's mux (http.ServeMux patterns, e.g.
// "GET /ssf/streams"), counted in the request metrics under its pattern.
// It is for other packages serving on the same public URL (the SSF
// transmitter, the operator API); call it before serving.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.metrics.instrument(pattern, h))
}

// Registry returns the metrics registry served at /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Issuer returns the public URL the server answers as.
func (s *Server) Issuer() string { return s.issuer }

// url returns the public URL of an endpoint path.
func (s *Server) url(path string) string { return strings.TrimSuffix(s.issuer, "/") + path }

// recoverPanics turns a panic in a handler into a logged 500: a bug must
// not take the broker down with it. (No input should cause one; the fuzz
// tests look for those.)
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeOAuthError(w, &oauthError{Status: http.StatusInternalServerError, Code: errServerError, Description: "internal error"})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest,
			Description: "method " + clip(r.Method) + " is not allowed; use " + allow})
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no such endpoint"})
}

// fail answers err at endpoint at, logging what the caller is not told.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, at endpoint, err error) {
	oe := toOAuth(at, err)
	if oe.Status >= 500 {
		s.log.Error("agent API request failed", "path", r.URL.Path, "err", err)
	}
	writeOAuthError(w, oe)
}

// tokenRef names a token in logs: a short prefix, never the whole token.
func tokenRef(raw string) string {
	if len(raw) > 12 {
		return raw[:12] + "…"
	}
	return "…"
}
