package ssfwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// SET error codes a receiver reports (RFC 8935 §2.4 and SSF 1.0 §8.1.4.1).
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidKey           = "invalid_key"
	ErrInvalidIssuer        = "invalid_issuer"
	ErrInvalidAudience      = "invalid_audience"
	ErrAuthenticationFailed = "authentication_failed"
	ErrAccessDenied         = "access_denied"
	ErrInvalidState         = "invalid_state"
)

// MaxSETSize bounds a SET, compact or as claims JSON; writ's are under 1 KiB.
const MaxSETSize = 64 << 10

// SETError is why a SET was refused, with the code a receiver reports in
// setErrs or a push error response.
type SETError struct {
	Code        string
	Description string
}

func (e *SETError) Error() string { return "SET refused (" + e.Code + "): " + e.Description }

func setErr(code, format string, args ...any) *SETError {
	return &SETError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// SET is a parsed Security Event Token claims set (RFC 8417 §2.2).
type SET struct {
	Issuer   string
	JTI      string
	IssuedAt time.Time
	Audience []string
	TXN      string
	// Subject is sub_id, or for older CAEP and RISC events without one, the
	// event's subject member (then LegacySubject is set).
	Subject       *Subject
	LegacySubject bool
	// HasSub and HasExp report claims the SSF profile forbids (SSF 1.0 §4.1.2, §4.1.7).
	HasSub, HasExp bool
	// Events holds every event by type URI.
	Events map[string]json.RawMessage
	// Type and Event are the one event, when there is exactly one.
	Type  string
	Event EventBody
}

// EventBody holds the members of an SSF or CAEP event that writ reads.
type EventBody struct {
	Timestamp        time.Time                  // event_timestamp
	InitiatingEntity string                     // initiating_entity
	ReasonAdmin      map[string]string          // reason_admin, by language tag
	ReasonUser       map[string]string          // reason_user, by language tag
	Claims           map[string]json.RawMessage // claims of token-claims-change
	State            string                     // state of a verification event
	Status           string                     // status of a stream-updated event
	Reason           string                     // reason of a stream-updated event
	Epoch            uint64                     // writ's epoch member; 0 when absent
}

// AudienceHas reports whether aud is one of the SET's audiences.
func (s *SET) AudienceHas(aud string) bool {
	for _, a := range s.Audience {
		if a == aud {
			return true
		}
	}
	return false
}

// CheckProfile checks the SSF 1.0 SET profile: no sub, no exp, a sub_id and
// exactly one event.
func (s *SET) CheckProfile() error {
	switch {
	case s.HasSub:
		return setErr(ErrInvalidRequest, "SET has a sub claim, which the SSF profile forbids")
	case s.HasExp:
		return setErr(ErrInvalidRequest, "SET has an exp claim, which the SSF profile forbids")
	case len(s.Events) != 1:
		return setErr(ErrInvalidRequest, "SET has %d events; the SSF profile wants exactly one", len(s.Events))
	case s.Subject == nil || s.LegacySubject:
		return setErr(ErrInvalidRequest, "SET has no sub_id")
	}
	return nil
}

// rawClaims are the members of a SET as JSON, decoded one by one so a
// wrong type is a clear error rather than a silent zero.
type rawClaims struct {
	Iss    json.RawMessage            `json:"iss"`
	JTI    json.RawMessage            `json:"jti"`
	Iat    json.RawMessage            `json:"iat"`
	Aud    json.RawMessage            `json:"aud"`
	TXN    json.RawMessage            `json:"txn"`
	SubID  json.RawMessage            `json:"sub_id"`
	Sub    json.RawMessage            `json:"sub"`
	Exp    json.RawMessage            `json:"exp"`
	Events map[string]json.RawMessage `json:"events"`
}

type rawEvent struct {
	Timestamp        json.RawMessage            `json:"event_timestamp"`
	InitiatingEntity json.RawMessage            `json:"initiating_entity"`
	ReasonAdmin      json.RawMessage            `json:"reason_admin"`
	ReasonUser       json.RawMessage            `json:"reason_user"`
	Claims           map[string]json.RawMessage `json:"claims"`
	State            json.RawMessage            `json:"state"`
	Status           json.RawMessage            `json:"status"`
	Reason           json.RawMessage            `json:"reason"`
	Subject          json.RawMessage            `json:"subject"`
	Epoch            json.RawMessage            `json:"https://writ.dev/ssf/epoch"`
}

// ParseSET parses the claims set of a SET (the JWS payload). It checks RFC
// 8417's requirements (iss, iat, jti, events) and the types of the members
// it reads; CheckProfile adds the SSF profile.
func ParseSET(payload []byte) (*SET, error) {
	if len(payload) > MaxSETSize {
		return nil, setErr(ErrInvalidRequest, "SET is %d bytes; the limit is %d", len(payload), MaxSETSize)
	}
	if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, setErr(ErrInvalidRequest, "SET claims are not a JSON object")
	}
	var rc rawClaims
	if err := json.Unmarshal(payload, &rc); err != nil {
		return nil, setErr(ErrInvalidRequest, "SET claims are not valid JSON: %s", jsonProblem(err))
	}
	s := &SET{HasSub: present(rc.Sub), HasExp: present(rc.Exp), Events: rc.Events}
	var err error
	if s.Issuer, err = requiredString(rc.Iss, "iss"); err != nil {
		return nil, err
	}
	if s.JTI, err = requiredString(rc.JTI, "jti"); err != nil {
		return nil, err
	}
	if !present(rc.Iat) {
		return nil, setErr(ErrInvalidRequest, "SET has no iat")
	}
	if s.IssuedAt, err = numericDate(rc.Iat, "iat"); err != nil {
		return nil, err
	}
	if s.Audience, err = ParseAudience(rc.Aud); err != nil {
		return nil, err
	}
	if present(rc.TXN) {
		if s.TXN, err = requiredString(rc.TXN, "txn"); err != nil {
			return nil, err
		}
	}
	if len(rc.Events) == 0 {
		return nil, setErr(ErrInvalidRequest, "SET has no events")
	}
	for typ, body := range rc.Events {
		if typ == "" {
			return nil, setErr(ErrInvalidRequest, "SET has an event with an empty type")
		}
		if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
			return nil, setErr(ErrInvalidRequest, "event %s is not a JSON object", Quote(typ))
		}
	}
	if present(rc.SubID) {
		if s.Subject, err = parseSubject(rc.SubID, "sub_id", 0); err != nil {
			return nil, err
		}
	}
	if len(rc.Events) == 1 {
		for typ, body := range rc.Events {
			s.Type = typ
			var legacy *Subject
			if s.Event, legacy, err = parseEventBody(body); err != nil {
				return nil, err
			}
			if s.Subject == nil && legacy != nil {
				s.Subject, s.LegacySubject = legacy, true
			}
		}
	}
	return s, nil
}

func parseEventBody(body json.RawMessage) (EventBody, *Subject, error) {
	var re rawEvent
	var ev EventBody
	if err := json.Unmarshal(body, &re); err != nil {
		return ev, nil, setErr(ErrInvalidRequest, "event is not valid: %s", jsonProblem(err))
	}
	var err error
	if present(re.Timestamp) {
		if ev.Timestamp, err = numericDate(re.Timestamp, "event_timestamp"); err != nil {
			return ev, nil, err
		}
	}
	if present(re.InitiatingEntity) {
		if ev.InitiatingEntity, err = requiredString(re.InitiatingEntity, "initiating_entity"); err != nil {
			return ev, nil, err
		}
	}
	if ev.ReasonAdmin, err = reasons(re.ReasonAdmin, "reason_admin"); err != nil {
		return ev, nil, err
	}
	if ev.ReasonUser, err = reasons(re.ReasonUser, "reason_user"); err != nil {
		return ev, nil, err
	}
	ev.Claims = re.Claims
	for _, m := range []struct {
		dst  *string
		raw  json.RawMessage
		name string
	}{{&ev.State, re.State, "state"}, {&ev.Status, re.Status, "status"}, {&ev.Reason, re.Reason, "reason"}} {
		if *m.dst, err = optionalString(m.raw, m.name); err != nil {
			return ev, nil, err
		}
	}
	if present(re.Epoch) {
		var f float64
		if json.Unmarshal(re.Epoch, &f) != nil || f < 0 || f != math.Trunc(f) || f > 1<<53 {
			return ev, nil, setErr(ErrInvalidRequest, "%s is not a non-negative integer", MemberEpoch)
		}
		ev.Epoch = uint64(f)
	}
	var legacy *Subject
	if present(re.Subject) {
		if legacy, err = parseSubject(re.Subject, "subject", 0); err != nil {
			return ev, nil, err
		}
	}
	return ev, legacy, nil
}

// parseSubject decodes a subject identifier; a complex subject's members
// are simple subjects (SSF 1.0 §3.3).
func parseSubject(raw json.RawMessage, name string, depth int) (*Subject, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, setErr(ErrInvalidRequest, "%s is not a JSON object", name)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, setErr(ErrInvalidRequest, "%s is not valid: %s", name, jsonProblem(err))
	}
	s := &Subject{}
	var err error
	format, ok := m["format"]
	if !ok {
		// RFC 8417's examples predate RFC 9493 and name it subject_type.
		format, ok = m["subject_type"]
	}
	if ok {
		if s.Format, err = requiredString(format, name+".format"); err != nil {
			return nil, err
		}
	}
	strs := map[string]*string{"id": &s.ID, "iss": &s.Iss, "sub": &s.Sub, "jti": &s.JTI, "uri": &s.URI, "email": &s.Email}
	subs := map[string]**Subject{"user": &s.User, "device": &s.Device, "session": &s.Session,
		"application": &s.Application, "tenant": &s.Tenant, "org_unit": &s.OrgUnit, "group": &s.Group}
	for k, v := range m {
		if dst, ok := strs[k]; ok && s.Format != FormatComplex {
			// Members of other formats may have other types; only the
			// formats that define these names as strings are read.
			if str, err := optionalString(v, name+"."+k); err == nil {
				*dst = str
			} else if readsString(s.Format, k) {
				return nil, err
			}
			continue
		}
		if dst, ok := subs[k]; ok && (s.Format == FormatComplex || s.Format == "") {
			if depth > 0 {
				return nil, setErr(ErrInvalidRequest, "%s nests a complex subject in a complex subject", name)
			}
			if *dst, err = parseSubject(v, name+"."+k, depth+1); err != nil {
				return nil, err
			}
		}
	}
	if s.Format == "" {
		// Subjects of SSF drafts before the format member of complex
		// subjects; RFC 9493 requires format on simple ones.
		if s.User == nil && s.Device == nil && s.Session == nil && s.Application == nil && s.Tenant == nil &&
			s.OrgUnit == nil && s.Group == nil {
			return nil, setErr(ErrInvalidRequest, "%s has no format", name)
		}
		s.Format = FormatComplex
	}
	return s, nil
}

// readsString reports whether member k of a subject of format f is a
// string that writ reads, so a wrong type is an error.
func readsString(f, k string) bool {
	switch f {
	case FormatOpaque:
		return k == "id"
	case FormatIssSub:
		return k == "iss" || k == "sub"
	case FormatJWTID:
		return k == "iss" || k == "jti"
	case FormatURI:
		return k == "uri"
	}
	return false
}

func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

func requiredString(raw json.RawMessage, name string) (string, error) {
	s, err := optionalString(raw, name)
	if err == nil && s == "" {
		return "", setErr(ErrInvalidRequest, "SET has no %s", name)
	}
	return s, err
}

func optionalString(raw json.RawMessage, name string) (string, error) {
	if !present(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", setErr(ErrInvalidRequest, "%s is not a string", name)
	}
	return s, nil
}

// numericDate reads a JWT NumericDate (RFC 7519 §2), fractions allowed.
func numericDate(raw json.RawMessage, name string) (time.Time, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, setErr(ErrInvalidRequest, "%s is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// ParseAudience reads an aud member: one string or an array of strings
// (RFC 7519 §4.1.3); nil, and no error, when it is absent or null.
func ParseAudience(raw json.RawMessage) ([]string, error) {
	if !present(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, setErr(ErrInvalidRequest, "aud is neither a string nor an array of strings")
	}
	return many, nil
}

// reasons reads reason_admin or reason_user: an object of language tag to
// message (CAEP 1.0 §2), or a plain string as SSF drafts had it.
func reasons(raw json.RawMessage, name string) (map[string]string, error) {
	if !present(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return map[string]string{"und": one}, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, setErr(ErrInvalidRequest, "%s is neither an object of strings nor a string", name)
	}
	return m, nil
}

// KeyFunc returns the verification key with the given kid.
type KeyFunc func(kid string) (*jose.JSONWebKey, error)

// VerifyOptions say what a verified SET must be.
type VerifyOptions struct {
	Issuer   string                    // required: the iss every SET must carry
	Audience string                    // when set, one of the SET's audiences
	Algs     []jose.SignatureAlgorithm // the allow-list; empty means EdDSA, ES256, RS256
	Key      KeyFunc                   // required
}

// DefaultAlgs are the SET and token signature algorithms accepted by default.
var DefaultAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}

// VerifySET checks a compact SET: typ, alg, signature, the claims of RFC
// 8417, the SSF profile, iss and aud. The error is a *SETError whose Code
// is what a receiver reports back.
func VerifySET(compact string, o VerifyOptions) (*SET, error) {
	if o.Key == nil || o.Issuer == "" {
		return nil, errors.New("ssfwire: VerifySET needs an issuer and a key function")
	}
	if len(compact) > MaxSETSize || strings.Count(compact, ".") != 2 {
		return nil, setErr(ErrInvalidRequest, "not a compact JWS")
	}
	algs := o.Algs
	if len(algs) == 0 {
		algs = DefaultAlgs
	}
	jws, err := jose.ParseSignedCompact(compact, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, setErr(ErrInvalidRequest, "not a signed JWT with an accepted algorithm")
	}
	h := jws.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), SETType) {
		return nil, setErr(ErrInvalidRequest, "typ is %s, not %s", Quote(typ), SETType)
	}
	if _, crit := h.ExtraHeaders["crit"]; crit {
		return nil, setErr(ErrInvalidRequest, "crit header is not understood")
	}
	key, err := o.Key(h.KeyID)
	if err != nil || key == nil {
		return nil, setErr(ErrInvalidKey, "no key %s to verify the SET", Quote(h.KeyID))
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, setErr(ErrInvalidKey, "SET alg %s does not match key %s", Quote(h.Algorithm), Quote(h.KeyID))
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, setErr(ErrInvalidKey, "SET signature does not verify")
	}
	s, err := ParseSET(payload)
	if err != nil {
		return nil, err
	}
	if err := s.CheckProfile(); err != nil {
		return nil, err
	}
	if s.Issuer != o.Issuer {
		return nil, setErr(ErrInvalidIssuer, "SET issued by %s, not %s", Quote(s.Issuer), Quote(o.Issuer))
	}
	if o.Audience != "" && !s.AudienceHas(o.Audience) {
		return nil, setErr(ErrInvalidAudience, "SET is not for %s", Quote(o.Audience))
	}
	return s, nil
}
