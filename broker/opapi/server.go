package opapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
)

// Options configure the operator API.
type Options struct {
	// PublicURL is the issuer URL writ is reached at; the operator API
	// lives under PublicURL + "/v1/". Required.
	PublicURL string
	// Verifier verifies operators' ID tokens at the configured provider.
	// Required.
	Verifier IDTokenVerifier
	// OIDCIssuer and ApproverGroup are checked again on every call: an
	// operator token proves both, and stops working when either changes.
	OIDCIssuer    string
	ApproverGroup string
	// ClientID and GroupsClaim are published at /v1/login for clients
	// to sign in with.
	ClientID    string
	GroupsClaim string
	// TokenLifetime bounds operator tokens; DefaultTokenLifetime when zero.
	TokenLifetime time.Duration
	// FreshAuth, when set, is how recent the operator's authentication
	// at the provider (auth_time) must be to approve a critical-risk
	// request, revoke everything or unfreeze.
	FreshAuth time.Duration
	// Policy reports the policy in force; nil when there is no policy file.
	Policy func() PolicyStatus
	// ShadowHits reports the shadow rules' hits by rule (GET
	// /v1/standing); nil when there is no policy file.
	ShadowHits func() map[string]uint64
	// RingSize is how many recent events a reconnecting client can
	// resume from; DefaultRingSize when zero.
	RingSize int
	// Heartbeat is how often an idle event stream sends a comment, so
	// proxies keep it open and clients notice a dead server; 15 s when zero.
	Heartbeat time.Duration
	// Now is the clock of token expiry and fresh_auth; the Service's when nil.
	Now func() time.Time
	// ProofNow is the clock DPoP proofs' iat is judged by: clients sign
	// them with their own wall clock. time.Now when nil.
	ProofNow func() time.Time
	Logger   *slog.Logger
}

// Server serves the operator API. Mount its Patterns on the agent API's
// mux (or any mux at the public URL's root) and run Run while it serves.
type Server struct {
	svc    *broker.Service
	opts   Options
	issuer string
	prefix string
	now    func() time.Time
	log    *slog.Logger
	proofs *dpop.Verifier
	hub    *hub
	idem   *idempotency
	mux    *http.ServeMux
	done   chan struct{}

	subscribed atomic.Bool
}

// New returns the operator API over svc.
func New(svc *broker.Service, opts Options) (*Server, error) {
	if svc == nil || opts.Verifier == nil {
		return nil, errors.New("opapi: a Service and an ID token verifier are required")
	}
	issuer := strings.TrimSuffix(opts.PublicURL, "/")
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("opapi: public URL %q is not an absolute http(s) URL", opts.PublicURL)
	}
	if opts.ApproverGroup == "" {
		return nil, errors.New("opapi: the approver group is required")
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	s := &Server{svc: svc, opts: opts, issuer: issuer, prefix: strings.TrimSuffix(u.EscapedPath(), "/"),
		now: opts.Now, log: opts.Logger, hub: newHub(opts.RingSize), done: make(chan struct{})}
	if s.now == nil {
		s.now = svc.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.proofs = &dpop.Verifier{Now: opts.ProofNow, Replay: dpop.NewReplayCache(0)}
	s.idem = newIdempotency(s.now)
	s.routes()
	return s, nil
}

// Patterns are the mux patterns the server answers.
func (s *Server) Patterns() []string { return []string{s.prefix + "/v1/"} }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run numbers the broker's events for the stream until ctx ends. It
// subscribes before it returns control to the scheduler, so a call made
// after Run started is in the stream.
func (s *Server) Run(ctx context.Context) error {
	events := s.svc.Subscribe(ctx)
	s.subscribed.Store(true)
	defer close(s.done)
	s.hub.run(ctx, events)
	return nil
}

// Subscribed reports whether Run has subscribed to the broker's events:
// from then on every event is in the stream.
func (s *Server) Subscribed() bool { return s.subscribed.Load() }

// handler is an authenticated endpoint.
type handler func(w http.ResponseWriter, r *http.Request, c *caller)

func (s *Server) routes() {
	m := http.NewServeMux()
	p := s.prefix
	m.HandleFunc("POST "+p+PathToken, s.exchange)
	m.HandleFunc("GET "+p+PathLogin, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, LoginInfo{OIDCIssuer: s.opts.OIDCIssuer, ClientID: s.opts.ClientID,
			ApproverGroup: s.opts.ApproverGroup, GroupsClaim: s.opts.GroupsClaim, FreshAuth: broker.Duration(s.opts.FreshAuth)})
	})
	get := func(path string, h handler) { m.Handle("GET "+p+path, s.authed(h, false)) }
	post := func(path string, h handler) { m.Handle("POST "+p+path, s.authed(h, true)) }
	get(PathSession, s.session)
	get("/v1/config", s.config)
	get("/v1/issuer", s.issuerState)
	get("/v1/policy", s.policy)
	get("/v1/requests", s.listRequests)
	get("/v1/requests/{id}", s.showRequest)
	post("/v1/requests/{id}/approve", s.approve)
	post("/v1/requests/{id}/narrow", s.narrow)
	post("/v1/requests/{id}/deny", s.deny)
	get("/v1/decisions/{id}", s.showDecision)
	get("/v1/grants", s.listGrants)
	get("/v1/grants/{id}", s.showGrant)
	post("/v1/grants/{id}/revoke", s.revokeGrant)
	get("/v1/agents", s.listAgents)
	post("/v1/agents/{id}/revoke", s.revokeAgent)
	post("/v1/agents/{id}/quarantine", s.quarantine)
	post("/v1/agents/{id}/release", s.release)
	post("/v1/revoke-all", s.revokeAll)
	post("/v1/freeze", s.freeze)
	post("/v1/unfreeze", s.unfreeze)
	get("/v1/audit", s.audit)
	get("/v1/audit/verify", s.verifyAudit)
	get("/v1/standing", s.standingStatus)
	post("/v1/requests/{id}/standing", s.createStanding)
	post("/v1/standing/{id}/revoke", s.revokeStanding)
	get(PathEvents, s.serveEvents)
	m.HandleFunc(p+"/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: broker.ENOTFOUND, Description: "no such operator API endpoint or method: " + r.Method + " " + clip(r.URL.Path), Code: broker.ENOTFOUND})
	})
	s.mux = m
}

// authed authenticates a call; for a mutating one it applies the
// Idempotency-Key and bounds the body.
func (s *Server) authed(h handler, mutating bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !mutating {
			h(w, r, c)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		key := r.Header.Get(IdempotencyHeader)
		if key == "" {
			h(w, r, c)
			return
		}
		if len(key) > maxKeyLen {
			s.fail(w, r, broker.Errorf(broker.EINVALID, "the %s is longer than %d bytes", IdempotencyHeader, maxKeyLen))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			s.fail(w, r, broker.Errorf(broker.EINVALID, "the body could not be read (at most 64 KiB)"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		e, first := s.idem.begin(c.op.ID()+"\x00"+r.URL.Path+"\x00"+key, sum)
		if !first && e.sum != sum {
			// The draft's 422: the same key for a different request is a
			// client bug, never a replay.
			writeJSON(w, http.StatusUnprocessableEntity, ErrorBody{Error: broker.EINVALID, Code: broker.EINVALID,
				Description: "this " + IdempotencyHeader + " was used for another request body; use a new key per action"})
			return
		}
		if !first {
			a := e.ans
			for k, v := range a.header {
				w.Header()[k] = v
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(a.status)
			_, _ = w.Write(a.body)
			return
		}
		rec := &recorder{ResponseWriter: w}
		defer func() {
			// A panic or a handler that wrote nothing still settles the key.
			if rec.status == 0 {
				rec.status = http.StatusInternalServerError
			}
			s.idem.finish(e, &answer{status: rec.status, body: rec.body, header: w.Header().Clone()})
		}()
		h(rec, r, c)
	})
}

// fail answers an error; internal errors are logged in full and shown as
// "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body, ae := failure(err)
	if ae != nil {
		s.challenge(w, ae)
	}
	if status >= 500 {
		s.log.Error("operator API call failed", "path", r.URL.Path, "err", err)
	}
	var de *decidedError
	if errors.As(err, &de) {
		body.Decision = de.decision
	}
	writeJSON(w, status, body)
}
