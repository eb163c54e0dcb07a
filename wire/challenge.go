package wire

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Limits on what a challenge may carry, so a hostile resource server cannot
// make an agent parse or ask for much.
const (
	maxChallengeHeader = 8 << 10
	maxChallengeDetail = 8
	maxChallengeScopes = 16
)

// Challenge is one RFC 7235 §2.1 challenge: a scheme and its parameters
// (names lower-cased; a token68 challenge has none).
type Challenge struct {
	Scheme string
	Params map[string]string
}

// ParseChallenges parses WWW-Authenticate header values (RFC 7235 §4.1):
// each a comma-separated list of challenges, each a scheme followed by
// auth-params (token or quoted-string values) or a token68.
func ParseChallenges(values []string) ([]Challenge, error) {
	var out []Challenge
	total := 0
	for _, v := range values {
		if total += len(v); total > maxChallengeHeader {
			return nil, errors.New("WWW-Authenticate is too long")
		}
		cs, err := parseChallengeList(v)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func parseChallengeList(s string) ([]Challenge, error) {
	var out []Challenge
	p := &scanner{s: s}
	for {
		p.skip(" \t,")
		if p.done() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return nil, fmt.Errorf("WWW-Authenticate: expected an auth-scheme at byte %d", p.i)
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		p.skip(" \t")
		// Parameters until the next scheme: a token not followed by "=".
		for !p.done() {
			save := p.i
			p.skip(" \t,")
			name := p.token()
			p.skip(" \t")
			if name == "" || !p.eat('=') {
				p.i = save
				if name != "" || p.done() {
					break
				}
				return nil, fmt.Errorf("WWW-Authenticate: unexpected %q at byte %d", p.s[p.i], p.i)
			}
			if p.peek() == '=' || p.done() || p.peek() == ',' { // token68 padding, not a parameter
				return nil, fmt.Errorf("WWW-Authenticate: token68 challenges are not understood")
			}
			p.skip(" \t")
			var val string
			if p.peek() == '"' {
				var err error
				if val, err = p.quoted(); err != nil {
					return nil, err
				}
			} else if val = p.token(); val == "" {
				return nil, fmt.Errorf("WWW-Authenticate: parameter %s has no value", name)
			}
			name = strings.ToLower(name)
			if _, dup := c.Params[name]; dup {
				return nil, fmt.Errorf("WWW-Authenticate: parameter %s given twice", name)
			}
			c.Params[name] = val
			p.skip(" \t")
		}
		out = append(out, c)
	}
}

type scanner struct {
	s string
	i int
}

func (p *scanner) done() bool { return p.i >= len(p.s) }

func (p *scanner) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *scanner) eat(c byte) bool {
	if p.peek() == c && !p.done() {
		p.i++
		return true
	}
	return false
}

func (p *scanner) skip(set string) {
	for !p.done() && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads an RFC 7230 token.
func (p *scanner) token() string {
	start := p.i
	for !p.done() && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *scanner) quoted() (string, error) {
	p.i++ // the opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.done() {
				return "", errors.New("WWW-Authenticate: unterminated quoted-pair")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '\t' || c >= ' ' && c != 0x7f:
			b.WriteByte(c)
		default:
			return "", errors.New("WWW-Authenticate: control character in a quoted-string")
		}
	}
	return "", errors.New("WWW-Authenticate: unterminated quoted-string")
}

func isTChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ScopeChallenge is a resource server's 403 insufficient_scope answer (RFC
// 6750 §3.1, RFC 9449 §7.1) as writ's guard writes it: the scopes (writ's
// actions) that are missing, the protected-resource metadata URL (RFC 9728
// §5.1), and writ's extension parameter authorization_details: the RFC 9396
// details that would cover the call, as base64url JSON.
type ScopeChallenge struct {
	Scheme           string // "Bearer" or "DPoP"
	Realm            string
	Description      string
	Scopes           []string
	ResourceMetadata string
	Details          []AuthorizationDetail
}

// ErrNoScopeChallenge says a response carries no insufficient_scope challenge.
var ErrNoScopeChallenge = errors.New("no insufficient_scope challenge")

// ParseScopeChallenge reads the insufficient_scope challenge of a
// response's WWW-Authenticate headers. The DPoP challenge is preferred
// when both are there. It refuses a challenge that names no scope, more
// than a few scopes or details, or details of a type other than writ's.
func ParseScopeChallenge(h http.Header) (*ScopeChallenge, error) {
	cs, err := ParseChallenges(h.Values("WWW-Authenticate"))
	if err != nil {
		return nil, err
	}
	var pick *Challenge
	for i := range cs {
		c := &cs[i]
		if c.Params["error"] != "insufficient_scope" {
			continue
		}
		if pick == nil || strings.EqualFold(c.Scheme, "DPoP") {
			pick = c
		}
	}
	if pick == nil {
		return nil, ErrNoScopeChallenge
	}
	sc := &ScopeChallenge{Scheme: pick.Scheme, Realm: pick.Params["realm"], Description: pick.Params["error_description"],
		Scopes: strings.Fields(pick.Params["scope"]), ResourceMetadata: pick.Params["resource_metadata"]}
	if len(sc.Scopes) == 0 {
		return nil, errors.New("the insufficient_scope challenge names no scope")
	}
	if len(sc.Scopes) > maxChallengeScopes {
		return nil, fmt.Errorf("the insufficient_scope challenge names %d scopes (at most %d)", len(sc.Scopes), maxChallengeScopes)
	}
	if raw, ok := pick.Params["authorization_details"]; ok {
		b, err := base64.RawURLEncoding.DecodeString(raw)
		if err != nil {
			return nil, errors.New("the challenge's authorization_details is not base64url")
		}
		if err := json.Unmarshal(b, &sc.Details); err != nil {
			return nil, errors.New("the challenge's authorization_details is not a JSON array of details")
		}
		if len(sc.Details) > maxChallengeDetail {
			return nil, fmt.Errorf("the challenge carries %d authorization details (at most %d)", len(sc.Details), maxChallengeDetail)
		}
		for _, d := range sc.Details {
			if d.Type != TaskDetailType {
				return nil, fmt.Errorf("the challenge's authorization detail has type %q, not writ's", d.Type)
			}
		}
	}
	return sc, nil
}

// EncodeDetails is the value of the challenge's authorization_details
// parameter: base64url (no padding) of the JSON array, which needs no
// quoting inside a quoted-string.
func EncodeDetails(details []AuthorizationDetail) string {
	if len(details) == 0 {
		return ""
	}
	b, _ := json.Marshal(details)
	return base64.RawURLEncoding.EncodeToString(b)
}
