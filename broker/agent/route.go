package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/wire"
)

// The step-up client remembers, for each kind of request that drew a
// challenge, the authority the challenge named, and later sends such a
// request with the first of the task's tokens that holds it (the task's
// own, then its follow-ons in the order they were approved). Without
// that, every later call needing a follow-on would go out with the
// parent's token first and be refused once, and each refusal is a
// refused use on the operator's console. The resource server still
// judges every call; this only picks which of the task's own tokens to
// present.

// maxLearned bounds the kinds of request a task remembers.
const maxLearned = 1024

// maxKeyBody bounds the body read to tell requests apart.
const maxKeyBody = 64 << 10

// need is the authority a challenge said a request lacked.
type need struct {
	scopes  []string
	details []wire.AuthorizationDetail
}

// requestKey names the kind of request req is for the resource server's
// authorization: its method and URL without query, and for a JSON-RPC
// body (an MCP call) each message's method and the tool name or resource
// URI it names, since every MCP call goes to the same URL.
func requestKey(req *http.Request) string {
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	key := req.Method + " " + u.String()
	if req.GetBody == nil {
		return key
	}
	rc, err := req.GetBody()
	if err != nil {
		return key
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxKeyBody+1))
	if err != nil || len(body) > maxKeyBody {
		return key
	}
	return key + rpcTargets(body)
}

// rpcTargets lists what the JSON-RPC messages in body call, or "" when
// body is not JSON-RPC.
func rpcTargets(body []byte) string {
	type message struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"params"`
	}
	var msgs []message
	body = bytes.TrimSpace(body)
	switch {
	case len(body) > 0 && body[0] == '{':
		var m message
		if json.Unmarshal(body, &m) != nil {
			return ""
		}
		msgs = []message{m}
	case len(body) > 0 && body[0] == '[':
		if json.Unmarshal(body, &msgs) != nil {
			return ""
		}
	}
	var b strings.Builder
	for _, m := range msgs {
		if m.Method == "" {
			continue
		}
		b.WriteString(" " + m.Method)
		if m.Params.Name != "" || m.Params.URI != "" {
			b.WriteString(" " + m.Params.Name + m.Params.URI)
		}
	}
	return b.String()
}

// learn remembers that requests of kind key need what ch names.
func (s *stepUps) learn(key string, ch *wire.ScopeChallenge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.learned[key]; !ok && len(s.learned) >= maxLearned {
		for k := range s.learned { // forget one; a forgotten kind costs one refusal
			delete(s.learned, k)
			break
		}
	}
	s.learned[key] = need{scopes: slices.Clone(ch.Scopes), details: slices.Clone(ch.Details)}
}

// tokenFor returns the token to send a request of kind key to location
// with: parent when nothing was learned of the kind or parent holds what
// it needs, else the first live follow-on made for the resource location
// is within that does, else parent. A follow-on's token never goes to
// another resource server, even one its scopes would allow.
func (s *stepUps) tokenFor(parent *Task, key, location string, now time.Time) *Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.learned[key]
	if !ok || holds(parent, n, location) {
		return parent
	}
	for _, c := range s.children {
		if now.Before(c.ExpiresAt) && wire.ResourceWithin(location, c.resource) && holds(c, n, location) {
			return c
		}
	}
	return parent
}

// holds reports whether t's token allows every action n names, at every
// location n's details give for it, or at location when none do.
func holds(t *Task, n need, location string) bool {
	for _, action := range n.scopes {
		at := []string{location}
		for _, d := range n.details {
			if slices.Contains(d.Actions, action) && len(d.Locations) > 0 {
				at = d.Locations
				break
			}
		}
		for _, loc := range at {
			if !wire.AllowsAt(t.Scopes, t.Details, loc, action) {
				return false
			}
		}
	}
	return true
}
