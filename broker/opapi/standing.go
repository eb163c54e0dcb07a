package opapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// Standing approvals over the operator API:
//
//	GET  /v1/standing                  → StandingStatus
//	POST /v1/requests/{id}/standing    StandingInput → *broker.StandingApproval
//	POST /v1/standing/{id}/revoke      RevokeInput   → *broker.StandingApproval
//
// Both POSTs are mutating calls: Idempotency-Key applies, and the broker
// audits each under the calling operator.

// StandingStatus is the answer of GET /v1/standing: the standing approvals
// (live ones first), the shadow rules' hits and the longest standing
// approval the broker accepts.
type StandingStatus struct {
	Standing    []*broker.StandingApproval `json:"standing"`
	ShadowHits  map[string]uint64          `json:"shadow_hits"`
	MaxStanding time.Duration              `json:"max_standing"`
}

// StandingInput is the body of POST /v1/requests/{id}/standing: how long
// the standing approval lasts ("30m", at most the broker's maximum) and
// why.
type StandingInput struct {
	For    string `json:"for"`
	Reason string `json:"reason,omitempty"`
}

// ParseStandingFor reads a standing approval's duration as sent: a Go
// duration ("30m", "1h30m"), positive, at most max.
func ParseStandingFor(s string, max time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, broker.Errorf(broker.EINVALID, "a standing approval needs a duration: for, such as \"30m\"")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, broker.Errorf(broker.EINVALID, "for %q is not a duration such as 30m or 2h", clip(s))
	}
	if d <= 0 {
		return 0, broker.Errorf(broker.EINVALID, "for must be positive")
	}
	if max > 0 && d > max {
		return 0, broker.Errorf(broker.EINVALID, "a standing approval lasts at most %s here; %s asked", max, d)
	}
	return d, nil
}

func (s *Server) standingStatus(w http.ResponseWriter, r *http.Request, c *caller) {
	out := StandingStatus{Standing: s.svc.StandingApprovals(), ShadowHits: map[string]uint64{}, MaxStanding: s.svc.MaxStanding()}
	if out.Standing == nil {
		out.Standing = []*broker.StandingApproval{}
	}
	if s.opts.ShadowHits != nil {
		if h := s.opts.ShadowHits(); h != nil {
			out.ShadowHits = h
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createStanding(w http.ResponseWriter, r *http.Request, c *caller) {
	var in StandingInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := ParseStandingFor(in.For, s.svc.MaxStanding())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sa, err := s.svc.CreateStanding(r.Context(), c.op, r.PathValue("id"), d, in.Reason)
	s.reply(w, r, sa, err)
}

func (s *Server) revokeStanding(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	sa, err := s.svc.RevokeStanding(r.Context(), c.op, r.PathValue("id"), in.Reason)
	s.reply(w, r, sa, err)
}
