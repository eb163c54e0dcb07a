package ssf

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/writhq/writ/broker"
)

// Body size limits.
const (
	maxManageBody = 64 << 10
	maxPollBody   = 1 << 20 // acks for up to some 10,000 SETs
)

// routes builds the handler's mux. Each authenticated route names the
// OAuth scopes that let a receiver's access token call it (CAEP
// Interoperability Profile, "OAuth Scopes"): changing streams needs
// ssf.manage; reading a stream's configuration or status, ssf.read or
// ssf.manage; polling for events, and reporting what was seen of them,
// ssf.read.
func (t *Transmitter) routes() {
	p := t.basePath
	t.mux = http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		t.patterns = append(t.patterns, pattern)
		t.mux.HandleFunc(pattern, h)
	}
	manage := []string{broker.ScopeSSFManage}
	read := []string{broker.ScopeSSFRead}
	readConfig := []string{broker.ScopeSSFRead, broker.ScopeSSFManage}
	handle("GET /.well-known/ssf-configuration"+p, t.handleMetadata)
	handle("POST "+p+"/ssf/stream", t.authed(manage, t.handleCreate))
	handle("GET "+p+"/ssf/stream", t.authed(readConfig, t.handleRead))
	handle("PATCH "+p+"/ssf/stream", t.authed(manage, t.handleUpdate))
	handle("PUT "+p+"/ssf/stream", t.authed(manage, t.handleReplace))
	handle("DELETE "+p+"/ssf/stream", t.authed(manage, t.handleDelete))
	handle("GET "+p+"/ssf/status", t.authed(readConfig, t.handleReadStatus))
	handle("POST "+p+"/ssf/status", t.authed(manage, t.handleUpdateStatus))
	handle("POST "+p+"/ssf/verify", t.authed(manage, t.handleVerify))
	handle("POST "+p+"/ssf/poll/{stream}", t.authed(read, t.handlePoll))
	handle("POST "+p+"/ssf/usage", t.authed(read, t.handleUsage))
}

// ServeHTTP serves the discovery document, the management API, the poll
// endpoints and the usage endpoint.
func (t *Transmitter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mux.ServeHTTP(w, r)
}

// Mount registers the transmitter's routes on mux (Go 1.22 patterns, with
// methods): GET /.well-known/ssf-configuration[/path] and {path}/ssf/...,
// where path is the path of the public URL.
func (t *Transmitter) Mount(mux *http.ServeMux) {
	for _, p := range t.patterns {
		mux.Handle(p, t)
	}
}

// Patterns returns the route patterns Mount registers.
func (t *Transmitter) Patterns() []string { return append([]string(nil), t.patterns...) }

type scopesKey struct{}

// RequiredScopes returns the OAuth scopes, any one of which lets an access
// token call the route r is for, while Options.Authenticate runs; nil
// otherwise. An authenticator accepting access tokens checks them; one
// accepting client assertions has no scopes to check.
func RequiredScopes(r *http.Request) []string {
	s, _ := r.Context().Value(scopesKey{}).([]string)
	return append([]string(nil), s...)
}

// authed authenticates the receiver and passes its id in the context.
// Refusals follow RFC 6750 §3 when the authenticator gives the reason
// invalid_token or insufficient_scope, as it does for access tokens.
func (t *Transmitter) authed(scopes []string, h func(w http.ResponseWriter, r *http.Request, receiver string)) http.HandlerFunc {
	challenge := `Bearer realm="ssf", scope="` + strings.Join(scopes, " ") + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		receiver, err := t.opts.Authenticate(r.WithContext(context.WithValue(r.Context(), scopesKey{}, scopes)))
		if err == nil && receiver == "" {
			err = errors.New("no receiver identity")
		}
		if err != nil {
			reason := broker.ErrorReason(err)
			switch {
			case reason == broker.ReasonInsufficientScope:
				w.Header().Set("WWW-Authenticate", challenge+`, error="insufficient_scope"`)
				writeError(w, http.StatusForbidden, reason, broker.ErrorMessage(err))
				return
			case broker.ErrorCode(err) == broker.EFORBIDDEN:
				writeError(w, http.StatusForbidden, "access_denied", broker.ErrorMessage(err))
				return
			}
			code := "invalid_client"
			if reason == broker.ReasonInvalidToken {
				code = reason
				w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
			} else {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			msg := "receiver authentication failed"
			if m := broker.ErrorMessage(err); m != "internal error" {
				msg += ": " + m
			}
			writeError(w, http.StatusUnauthorized, code, msg)
			return
		}
		h(w, r, receiver)
	}
}

// writeJSON answers with v as JSON, not to be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers in the RFC 6749 error format the rest of writ uses.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// writeSETError answers in the RFC 8935 §2.3 / RFC 8936 error format.
func writeSETError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"err": code, "description": desc})
}

// readBody reads a JSON request body of at most limit bytes; an empty body
// is "{}".
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, string) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, "the body must be application/json"
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "the body is too large"
		}
		return nil, "the body could not be read"
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return []byte("{}"), ""
	}
	return body, ""
}
