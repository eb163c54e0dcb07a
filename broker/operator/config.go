// Package operator signs on-call operators in with OpenID Connect and
// verifies who they are: provider discovery and ID-token verification with
// go-oidc, the device authorization grant (RFC 8628) and the authorization
// code flow with PKCE on a loopback redirect (RFC 8252) with x/oauth2, the
// approver-group check, and the operator's session with its refresh.
//
// A verified operator becomes a broker.Operator, identified by (iss, sub).
// Tokens stay in memory unless the operator asks to remember the session;
// they are never logged.
package operator

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Login flows.
const (
	// LoginDevice is the device authorization grant (RFC 8628): it works over
	// SSH, with the code entered on another device. The default.
	LoginDevice = "device"
	// LoginBrowser is the authorization code flow with PKCE on a loopback
	// redirect (RFC 8252), for a terminal with a browser beside it.
	LoginBrowser = "browser"
)

// Defaults for Config fields left empty.
const (
	DefaultGroupsClaim   = "groups"
	DefaultApproverGroup = "writ-approvers"
)

// DefaultScopes are requested when Config.Scopes is empty. offline_access is
// not among them: add it when the provider hands out refresh tokens only for
// it (the development provider does).
var DefaultScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}

// Config says which provider operators sign in at and what makes one an
// approver. The console fills it from --oidc-issuer, --oidc-client-id,
// --oidc-client-secret, --oidc-scopes, --approver-group, --groups-claim and
// --login.
type Config struct {
	// Issuer is the provider's issuer URL; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID is the client registered for writ at the provider, and the
	// audience every ID token must carry.
	ClientID string
	// ClientSecret is set for a confidential client only.
	ClientSecret string
	// Scopes requested; "openid" is added when missing. Default DefaultScopes.
	Scopes []string
	// ApproverGroup must appear in the GroupsClaim of the ID token.
	// Default DefaultApproverGroup.
	ApproverGroup string
	// GroupsClaim names the claim that holds the operator's groups: a
	// top-level name ("groups", "cognito:groups", a URL) or a dotted path
	// into nested objects ("realm_access.roles"). Default DefaultGroupsClaim.
	GroupsClaim string
	// Login is LoginDevice (default) or LoginBrowser.
	Login string
	// Remember keeps the session in a 0600 file at SessionPath so the next
	// start can resume it; otherwise tokens live in memory only.
	Remember bool
	// SessionPath defaults to DefaultSessionPath().
	SessionPath string
	// Dev marks operators signed in at the development provider, so the
	// console can say so.
	Dev bool
	// HTTPClient talks to the provider; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry checks and countdowns; default time.Now.
	Now func() time.Time
	// OpenBrowser opens the sign-in URL of the browser flow. Default: xdg-open
	// or open when a graphical session is there; its failure is never an error.
	OpenBrowser func(url string) error
	// Logger receives diagnostics, never tokens; default slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with defaults applied, or an error saying what is
// wrong with it.
func (cfg Config) withDefaults() (Config, error) {
	cfg.Issuer = strings.TrimSpace(cfg.Issuer)
	if cfg.Issuer == "" {
		return cfg, errors.New("operator sign-in: no OIDC issuer configured (--oidc-issuer)")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return cfg, fmt.Errorf("operator sign-in: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return cfg, fmt.Errorf("operator sign-in: issuer %q must use https (plain http is allowed on loopback only)", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return cfg, errors.New("operator sign-in: no OIDC client id configured (--oidc-client-id)")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = slices.Clone(DefaultScopes)
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.ApproverGroup == "" {
		cfg.ApproverGroup = DefaultApproverGroup
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	switch cfg.Login {
	case "":
		cfg.Login = LoginDevice
	case LoginDevice, LoginBrowser:
	default:
		return cfg, fmt.Errorf("operator sign-in: --login is %q, want %q or %q", cfg.Login, LoginDevice, LoginBrowser)
	}
	if cfg.Remember && cfg.SessionPath == "" {
		if cfg.SessionPath, err = DefaultSessionPath(); err != nil {
			return cfg, err
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OpenBrowser == nil {
		cfg.OpenBrowser = openBrowser
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// ParseScopes splits a --oidc-scopes value: scopes separated by commas or spaces.
func ParseScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// DefaultSessionPath is $XDG_STATE_HOME/writ/session.json, with
// XDG_STATE_HOME defaulting to ~/.local/state.
func DefaultSessionPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("operator session file: no XDG_STATE_HOME and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "writ", "session.json"), nil
}
