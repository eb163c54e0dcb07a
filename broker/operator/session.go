package operator

import (
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/oauth2"

	"github.com/writhq/writ/broker"
)

// Session is a verified operator's sign-in. It is immutable: Refresh returns
// a new one. Its tokens are unexported and print as "[redacted]".
type Session struct {
	// Operator is who signed in; every decision and revocation records it.
	Operator broker.Operator
	// Groups is the value of the groups claim, for display.
	Groups []string
	// IssuedAt and Expiry bound the session: the ID token's iat and exp.
	IssuedAt time.Time
	Expiry   time.Time

	tokens *secrets
}

// secrets are a session's tokens. Every way of printing them prints
// "[redacted]", so a session can be logged or dumped without leaking them.
type secrets struct {
	idToken string
	oauth   *oauth2.Token
}

func (*secrets) String() string               { return "[redacted]" }
func (*secrets) GoString() string             { return "[redacted]" }
func (*secrets) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (*secrets) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Remaining is how long the session has left at now, never negative.
func (s *Session) Remaining(now time.Time) time.Duration {
	if s == nil {
		return 0
	}
	return max(s.Expiry.Sub(now), 0)
}

// Ended reports whether the session has expired at now. A nil session has.
func (s *Session) Ended(now time.Time) bool {
	return s == nil || !now.Before(s.Expiry)
}

// Refreshable reports whether the provider gave a refresh token.
func (s *Session) Refreshable() bool {
	return s != nil && s.tokens != nil && s.tokens.oauth != nil && s.tokens.oauth.RefreshToken != ""
}

// RefreshAt is when the console should refresh a refreshable session: a fifth
// of its lifetime before the end, at most a minute before.
func (s *Session) RefreshAt() time.Time {
	lead := min(s.Expiry.Sub(s.IssuedAt)/5, time.Minute)
	return s.Expiry.Add(-lead)
}

// IDToken is the raw ID token, for the RFC 8693 exchange with a remote
// broker only. Never log it, never send it as a bearer token.
func (s *Session) IDToken() string {
	if s == nil || s.tokens == nil {
		return ""
	}
	return s.tokens.idToken
}

// Format prints who and until when for every verb, never the tokens: fmt
// cannot call methods on unexported fields, so without it %s of a Session
// would print them.
func (s Session) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "operator session of %s (%s) until %s", s.Operator.Display(), s.Operator.ID(), s.Expiry.UTC().Format(time.RFC3339))
}

// LogValue logs who and until when, never the tokens.
func (s *Session) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<none>")
	}
	return slog.GroupValue(
		slog.String("operator", s.Operator.ID()),
		slog.Time("expiry", s.Expiry),
		slog.Bool("refreshable", s.Refreshable()),
	)
}
