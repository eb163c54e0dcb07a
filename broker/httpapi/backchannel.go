package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// Extension parameters of the backchannel authentication request.
const (
	paramParent       = "parent_auth_req_id" // the task this one follows on from
	paramRequestedTTL = "requested_ttl"      // seconds the grant should live
)

// maxSeconds bounds integer durations in requests: a day is far beyond
// any limit writ allows, and keeps the conversion exact.
const maxSeconds = 24 * 60 * 60

// BackchannelResponse is the acknowledgement of a task request (CIBA §7.3).
type BackchannelResponse struct {
	AuthReqID string `json:"auth_req_id"`
	ExpiresIn int64  `json:"expires_in"`
	Interval  int64  `json:"interval"`
}

// serveBackchannel takes a task request: CIBA's backchannel
// authentication request in poll mode (CIBA Core §7.1), with RAR's
// authorization_details and RFC 8707's resource.
func (s *Server) serveBackchannel(w http.ResponseWriter, r *http.Request) {
	f, ferr := readForm(w, r, s.opts.MaxBodyBytes)
	if ferr != nil {
		writeOAuthError(w, ferr)
		return
	}
	client, aerr := s.authenticate(r.Context(), r, f, s.url(pathBackchannel))
	if aerr != nil {
		writeOAuthError(w, aerr)
		return
	}
	if client.Agent == nil {
		writeOAuthError(w, &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonUnauthorizedClient,
			Description: "client " + client.ID + " is a resource server; only agents may request tasks"})
		return
	}
	// The agent's submission allowance is consulted before its scopes and
	// details are read: a throttled agent costs no parsing. (Submit takes
	// the allowance, after the request is checked.)
	if ok, wait := s.svc.SubmissionAllowed(r.Context(), client.ID); !ok {
		s.metrics.throttled.Inc()
		writeOAuthError(w, slowDown(wait, "agent %s is sending requests too fast", client.ID))
		return
	}
	in, perr := s.submitInput(client.Agent, f)
	if perr != nil {
		writeOAuthError(w, perr)
		return
	}
	req, err := s.svc.Submit(r.Context(), client.ID, *in)
	if err != nil {
		if broker.ErrorCode(err) == broker.ETHROTTLED {
			s.metrics.throttled.Inc()
		}
		s.fail(w, r, atBackchannel, err)
		return
	}
	interval := int64(req.Interval / time.Second)
	writeJSON(w, http.StatusOK, BackchannelResponse{
		AuthReqID: req.ID,
		ExpiresIn: int64(req.Deadline.Sub(s.now()).Round(time.Second) / time.Second),
		Interval:  max(interval, 1),
	})
}

// submitInput reads a task request's parameters. What the parameters mean
// (approver queues, the catalogue, the agent's ceiling) is checked by the
// broker; this checks their form.
func (s *Server) submitInput(agent *broker.Agent, f form) (*broker.SubmitInput, *oauthError) {
	if f.has("request") || f.has("request_uri") {
		return nil, badRequest("signed request objects are not supported; send the parameters in the form")
	}
	if f.has("client_notification_token") {
		return nil, badRequest("writ delivers tokens by poll only; leave out client_notification_token and poll the token endpoint")
	}
	hints := 0
	for _, h := range []string{"login_hint", "id_token_hint", "login_hint_token"} {
		if f.has(h) {
			hints++
		}
	}
	switch {
	case hints == 0:
		return nil, badRequest("login_hint is required: name the approver queue (or person) that should review the task")
	case hints > 1:
		return nil, badRequest("send exactly one of login_hint, id_token_hint and login_hint_token")
	case !f.has("login_hint"):
		return nil, badRequest("writ identifies approvers by login_hint only")
	}
	if !f.has("scope") {
		return nil, &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonInvalidScope, Description: "scope is required"}
	}
	scopes, serr := parseScopeParam(f.get("scope"))
	if serr != nil {
		return nil, serr
	}
	in := &broker.SubmitInput{
		LoginHint: f.get("login_hint"),
		Intent:    f.get("binding_message"),
		Scopes:    scopes,
		Resource:  f.get("resource"),
		ParentID:  f.get(paramParent),
	}
	if raw := f.get("authorization_details"); raw != "" {
		details, err := parseDetails(raw)
		if err != nil {
			return nil, err
		}
		if err := capDetails(details); err != nil {
			return nil, err
		}
		in.Details = details
	}
	if in.Intent == "" {
		// The intent may come in the task detail instead of binding_message
		// (STANDARDS.md §2 puts it there); take it when the details agree.
		for i, d := range in.Details {
			if i == 0 {
				in.Intent = d.Intent
			} else if d.Intent != in.Intent {
				in.Intent = ""
				break
			}
		}
	}
	if in.Resource == "" {
		// RFC 8707 lets the server pick a default audience: the one
		// resource this agent may ask for, if there is exactly one.
		if len(agent.Ceiling) != 1 {
			return nil, &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonInvalidTarget,
				Description: "resource is required: agent " + agent.ID + " may ask for more than one resource"}
		}
		in.Resource = agent.Ceiling[0].Resource
	}
	var err *oauthError
	if in.Expiry, err = seconds(f, "requested_expiry"); err != nil {
		return nil, err
	}
	if in.TTL, err = seconds(f, paramRequestedTTL); err != nil {
		return nil, err
	}
	return in, nil
}

// seconds reads an optional positive integer number of seconds.
func seconds(f form, name string) (time.Duration, *oauthError) {
	raw := f.get(name)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n <= 0 || n > maxSeconds || strings.HasPrefix(raw, "+") {
		return 0, badRequest("%s must be a positive whole number of seconds, at most %d", name, maxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}
