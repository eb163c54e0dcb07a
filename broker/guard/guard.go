package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/ratelimit"
	"github.com/writhq/writ/wire"
)

// Config configures a Guard. Issuer and Audience are required.
type Config struct {
	// Issuer is writ's issuer URL: the iss of its tokens and where its
	// discovery documents are. https, or http on loopback.
	Issuer string
	// Audience is this resource server's identifier, the aud writ puts in
	// tokens for it (its resource URI in writ's configuration).
	Audience string
	// PublicURL is the base URL clients use to reach this server (scheme,
	// host, port, and any path prefix a proxy strips); a DPoP proof's htu
	// must be PublicURL + the request path. It is never taken from Host or
	// X-Forwarded-* headers. Audience when empty.
	PublicURL string
	// Algs is the allow-list of token and SET signature algorithms
	// (default ES256, EdDSA, RS256). none and MAC algorithms never pass.
	Algs []jose.SignatureAlgorithm
	// Leeway tolerates clock skew on exp, nbf and iat (default 5s).
	Leeway time.Duration
	// RequireDPoP refuses tokens that are not DPoP-bound.
	RequireDPoP bool
	// DPoP checks proofs; default a dpop.Verifier with its own replay cache.
	// Each proof counts against the replay quota of the key its token is
	// bound to, so one agent's flood of proofs cannot refuse another's.
	DPoP *dpop.Verifier
	// ClientLimit is how many requests one agent (the token's sub) may make
	// a second, and in a burst; past it the guard answers 429 slow_down
	// with Retry-After before checking the DPoP proof.
	// DefaultClientLimit when zero; a negative PerSecond disables it.
	ClientLimit ratelimit.Limit
	// HTTPClient makes every call to writ (discovery, JWKS, the feed, use
	// reports, introspection); give it a client certificate for mTLS.
	HTTPClient *http.Client
	// ClientAssertion, when set, authenticates the guard to writ with a
	// fresh client assertion per request, made for audience (writ's
	// issuer): as client_assertion in the form at the introspection endpoint
	// (RFC 7523 §2.2), and as "Authorization: Bearer <assertion>" on the SSF
	// endpoints. PrivateKeyJWT makes one.
	ClientAssertion func(ctx context.Context, audience string) (string, error)
	// FeedAccessToken, with ClientAssertion, has the guard get an access
	// token for writ's revocation feed with the client credentials grant
	// (RFC 6749 §4.4; scopes ssf.read and ssf.manage) and present it on the
	// feed and its other calls until shortly before it expires, instead of
	// a fresh assertion per call: writ then checks a signature once per
	// token rather than once per long poll. When writ grants none, the
	// guard falls back to an assertion per call and asks again a minute on.
	FeedAccessToken bool
	// Authenticate adds other credentials to each request to writ.
	Authenticate func(*http.Request) error
	// JWKSURL overrides the jwks_uri from writ's SSF metadata.
	JWKSURL string
	// JWKSRefetchInterval is the least time between JWKS fetches prompted
	// by tokens with an unknown kid (default 10s), so made-up kids cannot
	// make the guard hammer writ.
	JWKSRefetchInterval time.Duration
	// StaleAfter is how long the feed may be silent before the guard fails
	// closed (default 30s). writ answers a long poll within its poll timeout
	// (15s by default) even when nothing happened, so a healthy feed is
	// never silent that long.
	StaleAfter time.Duration
	// IntrospectionEndpoint, when set, is asked about each token (RFC 7662)
	// while the feed is stale, instead of refusing it. Answers are cached
	// for IntrospectionTTL (default 2s).
	IntrospectionEndpoint string
	IntrospectionTTL      time.Duration
	// ReportInterval is how often uses are reported to writ (default 1s);
	// negative turns reporting off.
	ReportInterval time.Duration
	// Retention is how long revocations are remembered (default 25h); it
	// must exceed the longest token lifetime writ allows.
	Retention time.Duration
	// MaxCachedTokens bounds the verified-token cache (default 100,000).
	MaxCachedTokens int
	// Realm is the realm of challenges (default Audience).
	Realm string
	// Scopes are the scopes (writ's actions) this resource understands,
	// published as scopes_supported in its protected-resource metadata.
	Scopes []string
	// ResourceName is a human-readable name for the metadata document.
	ResourceName string
	// ResourceMetadataURL is where this resource's RFC 9728 metadata is
	// published, named in every challenge as resource_metadata. Default:
	// the well-known URL of Audience (RFC 9728 §3.1); serve the document
	// there with MetadataHandler.
	ResourceMetadataURL string
	// Logger receives the guard's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Guard checks writ access tokens for one resource server: the token
// itself, its DPoP proof, and the revocation feed. It is safe for
// concurrent use; Run must be running for it to accept anything.
type Guard struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	client   *http.Client
	algs     []jose.SignatureAlgorithm
	realm    string
	dpopAlgs string
	base     string // PublicURL without a trailing slash

	cache        tokenCache
	jwks         jwksCache
	deny         *denySet
	feed         feedState
	sub          atomic.Pointer[subscription]
	usageURL     atomic.Pointer[string]
	feedTok      feedToken
	reports      *reporter
	introspected introspectCache
	metrics      metrics
	running      atomic.Bool
	limit        *ratelimit.Limiter // nil: no per-agent limit
}

// DefaultClientLimit is a guard's per-agent request limit.
var DefaultClientLimit = ratelimit.Limit{PerSecond: 200, Burst: 400}

// New checks cfg and returns a guard. It does no I/O; Run subscribes.
func New(cfg Config) (*Guard, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("guard: Issuer and Audience are required")
	}
	if err := checkURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("guard: issuer: %w", err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = cfg.Audience
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("guard: PublicURL %q must be an absolute http(s) URL without a query", cfg.PublicURL)
	}
	setDefault(&cfg.Leeway, 5*time.Second)
	setDefault(&cfg.StaleAfter, 30*time.Second)
	setDefault(&cfg.IntrospectionTTL, 2*time.Second)
	setDefault(&cfg.Retention, 25*time.Hour)
	setDefault(&cfg.JWKSRefetchInterval, 10*time.Second)
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = time.Second
	}
	if cfg.MaxCachedTokens <= 0 {
		cfg.MaxCachedTokens = 100_000
	}
	if cfg.Realm == "" {
		cfg.Realm = cfg.Audience
	}
	if cfg.ResourceMetadataURL == "" {
		cfg.ResourceMetadataURL = wire.ProtectedResourceMetadataURL(cfg.Audience)
	}
	if len(cfg.Algs) == 0 {
		cfg.Algs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}
	}
	for _, a := range cfg.Algs {
		if a == "none" || strings.HasPrefix(string(a), "HS") {
			return nil, fmt.Errorf("guard: algorithm %s is not allowed for access tokens", a)
		}
	}
	if cfg.DPoP == nil {
		cfg.DPoP = &dpop.Verifier{Replay: dpop.NewReplayCache(0)}
	}
	if cfg.DPoP.Now == nil && cfg.Now != nil {
		cfg.DPoP.Now = cfg.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	g := &Guard{cfg: cfg, log: cfg.Logger, now: cfg.Now, client: cfg.HTTPClient, algs: cfg.Algs, realm: cfg.Realm,
		dpopAlgs: strings.Join(cfg.DPoP.Algorithms(), " "), base: strings.TrimSuffix(cfg.PublicURL, "/"),
		deny: newDenySet(cfg.Retention), reports: newReporter(50_000)}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.log = g.log.With("component", "guard", "audience", cfg.Audience)
	if g.now == nil {
		g.now = time.Now
	}
	g.cache.max = int64(cfg.MaxCachedTokens)
	g.jwks.g = g
	g.jwks.minRefetch = cfg.JWKSRefetchInterval
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		jwksURL = strings.TrimSuffix(cfg.Issuer, "/") + "/jwks"
	}
	g.jwks.url.Store(&jwksURL)
	g.introspected.m = make(map[string]introspected)
	g.introspected.max = 10_000
	switch {
	case cfg.ClientLimit.PerSecond < 0:
	case cfg.ClientLimit.PerSecond == 0:
		g.limit = ratelimit.New(DefaultClientLimit, nil)
	default:
		g.limit = ratelimit.New(cfg.ClientLimit, nil)
	}
	g.metrics.init()
	return g, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// checkURL accepts https URLs, and http ones on loopback.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without query or fragment", s)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%q must use https", s)
}

// Run subscribes to writ's revocation feed and keeps it, writ's keys and
// the use reports flowing until ctx ends; then it deletes its stream and
// sends the last report. Until the feed has caught up, the guard refuses
// every token (or introspects, when configured).
func (g *Guard) Run(ctx context.Context) error {
	if g.running.Swap(true) {
		return errors.New("guard: Run is already running")
	}
	defer g.running.Store(false)
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		g.runFeed(ctx)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var report <-chan time.Time
	if g.cfg.ReportInterval > 0 {
		rt := time.NewTicker(g.cfg.ReportInterval)
		defer rt.Stop()
		report = rt.C
	}
	lastPrune := g.now()
	for {
		select {
		case <-ctx.Done():
			<-feedDone
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if g.cfg.ReportInterval > 0 {
				g.flushUses(fctx)
			}
			cancel()
			return nil
		case <-report:
			g.flushUses(ctx)
		case <-tick.C:
			if err := g.jwks.refreshIfDue(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("cannot refresh writ's JWKS; keeping the keys we have", "err", err)
			}
			if now := g.now(); now.Sub(lastPrune) > time.Minute {
				g.deny.prune(now)
				lastPrune = now
			}
			g.noteFreshness(g.now())
		}
	}
}

// Ready reports whether the guard can accept tokens now: its feed has
// caught up and is fresh (or introspection stands in). why says what is
// wrong when it cannot.
func (g *Guard) Ready() (ok bool, why string) {
	ok, why = g.fresh(g.now())
	if !ok && g.cfg.IntrospectionEndpoint != "" {
		return true, ""
	}
	return ok, why
}

// noteFreshness logs when the guard starts or stops failing closed.
func (g *Guard) noteFreshness(now time.Time) {
	ok, why := g.fresh(now)
	if !ok && g.feed.ready.Load() && !g.feed.stale.Swap(true) {
		if g.cfg.IntrospectionEndpoint != "" {
			g.log.Warn("revocation feed unavailable; asking writ's introspection endpoint about each token", "why", why)
		} else {
			g.log.Error("revocation feed unavailable; refusing every token until it is back", "why", why)
		}
	}
	if ok && g.feed.stale.Swap(false) {
		g.log.Info("revocation feed back; accepting tokens again")
	}
}

// Check authenticates r: the access token in its Authorization header
// (Bearer or DPoP scheme), the DPoP proof when the token is bound, and the
// revocation feed. It returns the Principal, or an *Error to answer with
// WriteError.
func (g *Guard) Check(ctx context.Context, r *http.Request) (*Principal, error) {
	return g.checkWith(ctx, r, nil)
}

// checkWith is Check with a requirement on the Principal (scope, action),
// judged before the use is counted as accepted or refused.
func (g *Guard) checkWith(ctx context.Context, r *http.Request, require func(*Principal) *Error) (*Principal, error) {
	p, err := g.check(ctx, r, require)
	if err != nil {
		g.metrics.refuse(err.Reason)
		return nil, err
	}
	g.metrics.accepted.Add(1)
	return p, nil
}

func (g *Guard) check(ctx context.Context, r *http.Request, require func(*Principal) *Error) (*Principal, *Error) {
	isDPoP, raw, e := parseAuthorization(r)
	if e != nil {
		return nil, e
	}
	ent := g.cache.get(raw)
	now := g.now()
	if ent == nil {
		var err *Error
		if ent, err = g.verifyToken(ctx, raw); err != nil {
			err.DPoP = isDPoP
			return nil, err
		}
		g.cache.put(ent, now.Unix())
	}
	reject := func(e *Error) (*Principal, *Error) {
		e.DPoP = isDPoP || ent.jkt != ""
		if g.cfg.ReportInterval > 0 {
			g.reports.record(ent.sid, false, now.UnixMilli(), r.Method+" "+r.URL.Path, e.Reason)
		}
		return nil, e
	}
	leeway := int64(g.cfg.Leeway / time.Second)
	unix := now.Unix()
	switch {
	case unix >= ent.exp+leeway:
		return reject(invalidToken(ReasonExpired, "the token has expired"))
	case ent.nbf != 0 && unix < ent.nbf-leeway, ent.iat != 0 && unix < ent.iat-leeway:
		return reject(invalidToken(ReasonNotYetValid, "the token is not valid yet"))
	case ent.jkt != "" && !isDPoP:
		return reject(invalidToken(ReasonBoundAsBearer, "the token is DPoP-bound; present it with the DPoP scheme and a proof"))
	case ent.jkt == "" && isDPoP:
		return reject(invalidToken(ReasonNotBound, "the token is not DPoP-bound; present it with the Bearer scheme"))
	case ent.jkt == "" && g.cfg.RequireDPoP:
		return reject(invalidToken(ReasonDPoPRequired, "this resource accepts only DPoP-bound tokens"))
	}

	v := g.deny.check(ent)
	if v.revoked != "" {
		return reject(invalidToken(ReasonRevoked, "the token was revoked: "+v.revoked))
	}
	if ok, why := g.fresh(now); !ok {
		if g.cfg.IntrospectionEndpoint == "" {
			g.noteFreshness(now)
			e := refuse(http.StatusServiceUnavailable, "temporarily_unavailable", ReasonFeedUnavailable,
				"the revocation status of tokens cannot be confirmed right now: "+why)
			e.RetryAfter = time.Second
			return reject(e)
		}
		active, err := g.introspect(ctx, ent)
		if err != nil {
			g.log.Warn("introspection failed while the feed is unavailable", "err", err)
			e := refuse(http.StatusServiceUnavailable, "temporarily_unavailable", ReasonFeedUnavailable,
				"the revocation status of tokens cannot be confirmed right now")
			e.RetryAfter = time.Second
			return reject(e)
		}
		if !active {
			return reject(invalidToken(ReasonInactive, "writ says the token is not active"))
		}
	}
	if v.exp != 0 && unix >= v.exp+leeway {
		return reject(invalidToken(ReasonExpired, "the token has expired (its grant was shortened)"))
	}
	if g.limit != nil {
		if ok, wait := g.limit.Allow(v.principal.Agent, now); !ok {
			e := refuse(http.StatusTooManyRequests, "slow_down", ReasonThrottled,
				"agent "+v.principal.Agent+" is making requests too fast; slow down")
			e.RetryAfter = max((wait + time.Second - 1).Truncate(time.Second), time.Second)
			return reject(e)
		}
	}
	if ent.jkt != "" {
		proof, err := g.cfg.DPoP.VerifyRequestFor(r, g.base+r.URL.EscapedPath(), raw, ent.jkt)
		if err != nil {
			var pe *dpop.Error
			if errors.As(err, &pe) && pe.Reason == dpop.ReasonReplayQuota {
				e := refuse(http.StatusTooManyRequests, "slow_down", ReasonThrottled, pe.Msg)
				e.RetryAfter = g.cfg.DPoP.ReplayRetryAfter()
				return reject(e)
			}
			if errors.As(err, &pe) {
				return reject(refuseDPoP(pe))
			}
			g.log.Error("DPoP verifier failed", "err", err)
			return reject(refuse(http.StatusInternalServerError, "server_error", "internal", "internal error"))
		}
		if proof.JKT != ent.jkt {
			return reject(refuseProof(ReasonKeyMismatch, "the DPoP proof is not signed with the key the token is bound to"))
		}
	}
	if require != nil {
		if e := require(v.principal); e != nil {
			return reject(e)
		}
	}
	if g.cfg.ReportInterval > 0 {
		g.reports.record(ent.sid, true, now.UnixMilli(), r.Method+" "+r.URL.Path, "")
	}
	return v.principal, nil
}

func refuseDPoP(pe *dpop.Error) *Error {
	return refuseProof(ReasonDPoPProof, pe.Msg).withCode(pe.Code())
}

func refuseProof(reason, desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: dpop.CodeInvalidProof, Reason: reason, Description: desc, DPoP: true}
}

func (e *Error) withCode(code string) *Error { e.Code = code; return e }

// parseAuthorization reads the one Authorization header: its scheme (Bearer
// or DPoP, case-insensitively) and token.
func parseAuthorization(r *http.Request) (isDPoP bool, token string, e *Error) {
	vals := r.Header["Authorization"]
	switch len(vals) {
	case 0:
		return false, "", refuse(http.StatusUnauthorized, "", ReasonNoToken, "no access token")
	case 1:
	default:
		return false, "", refuse(http.StatusBadRequest, "invalid_request", ReasonBadRequest, "the request has more than one Authorization header")
	}
	scheme, rest, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
	case strings.EqualFold(scheme, "DPoP"):
		isDPoP = true
	default:
		return false, "", refuse(http.StatusUnauthorized, "", ReasonNoToken, "no Bearer or DPoP access token")
	}
	// A token with spaces inside is not a token68; verifyToken refuses it
	// (it can never be in the cache), so the hot path need not scan for them.
	token = strings.Trim(rest, " ")
	if token == "" {
		return isDPoP, "", refuse(http.StatusBadRequest, "invalid_request", ReasonBadRequest, "the Authorization header has no token")
	}
	return isDPoP, token, nil
}
