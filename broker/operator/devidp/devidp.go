// Package devidp is a development OpenID Provider for `writ demo` and for
// tests: an in-process provider, built on zitadel/oidc's op package with
// in-memory storage, serving discovery, JWKS, the device authorization grant,
// the authorization code flow with PKCE and refresh tokens on a loopback port.
//
// It knows two people: Dana Demo, an approver, and Nico Nogroup, who is not.
// There are no passwords: its pages let whoever reaches the loopback port
// pick a user. It is marked DEV everywhere and must never face a network.
//
// The console reaches it only through discovery and ID-token verification,
// the same path a real provider takes. For unattended sign-in, AutoApprove
// signs every request in as one user; ApproveDevice and DenyDevice settle one
// code; a headless client can post the HTML forms too.
package devidp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// ClientID is the client writ's console signs in as. The client is public
// (PKCE, no secret) unless Options.ClientSecret is set.
const ClientID = "writ-console"

// ApproverGroup is the group the demo approver is in, writ's default.
const ApproverGroup = "writ-approvers"

// Usernames of the built-in users.
const (
	Dana = "dana" // Dana Demo, in ApproverGroup
	Nico = "nico" // Nico Nogroup, not an approver
)

// User is a person at the development provider.
type User struct {
	ID       string // the sub claim
	Username string
	Name     string
	Email    string
	Groups   []string
}

// DefaultUsers are Dana Demo, an approver, and Nico Nogroup, who is not.
var DefaultUsers = []User{
	{ID: "u-dana-0001", Username: Dana, Name: "Dana Demo", Email: "dana@demo.writ.test", Groups: []string{ApproverGroup, "oncall"}},
	{ID: "u-nico-0002", Username: Nico, Name: "Nico Nogroup", Email: "nico@demo.writ.test", Groups: []string{"dev", "qa"}},
}

// Options configure a provider; zero values take the defaults shown.
type Options struct {
	// Addr is where to listen; default "127.0.0.1:0". Loopback only.
	Addr string
	// ClientSecret makes ClientID a confidential client.
	ClientSecret string
	// Users default to DefaultUsers.
	Users []User
	// GroupsClaim is the claim the groups go out in; default "groups".
	GroupsClaim string
	// AutoApprove, a username, signs every device code and authorization
	// request in as that user without any page: for `writ demo`.
	AutoApprove string
	// OnDeviceCode, when set, is told each new user code. It runs on the
	// request's goroutine: it must return promptly.
	OnDeviceCode func(userCode string)
	// DeviceCodeLifetime default 5 minutes; PollInterval default 1 second
	// (the protocol counts whole seconds).
	DeviceCodeLifetime time.Duration
	PollInterval       time.Duration
	// IDTokenLifetime default 1 hour; AccessTokenLifetime default 1 hour;
	// RefreshTokenLifetime default 12 hours.
	IDTokenLifetime      time.Duration
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Users == nil {
		o.Users = DefaultUsers
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if o.DeviceCodeLifetime <= 0 {
		o.DeviceCodeLifetime = 5 * time.Minute
	}
	if o.PollInterval < time.Second {
		o.PollInterval = time.Second
	}
	if o.IDTokenLifetime <= 0 {
		o.IDTokenLifetime = time.Hour
	}
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = time.Hour
	}
	if o.RefreshTokenLifetime <= 0 {
		o.RefreshTokenLifetime = 12 * time.Hour
	}
	return o
}

func (o Options) userByName(name string) (User, bool) {
	for _, u := range o.Users {
		if u.Username == name {
			return u, true
		}
	}
	return User{}, false
}

func (o Options) userByID(id string) (User, bool) {
	for _, u := range o.Users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

// Provider is a running development provider.
type Provider struct {
	issuer  string
	storage *storage
	srv     *http.Server
	stop    func() bool
	once    sync.Once
	served  chan struct{}
}

// Start listens on loopback and serves until ctx ends or Close is called.
func Start(ctx context.Context, opts Options) (*Provider, error) {
	opts = opts.withDefaults()
	if opts.AutoApprove != "" {
		if _, ok := opts.userByName(opts.AutoApprove); !ok {
			return nil, fmt.Errorf("dev provider: AutoApprove names unknown user %q", opts.AutoApprove)
		}
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dev provider: address %q: %w", opts.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dev provider: %q is not a loopback address; the development provider never leaves this machine", opts.Addr)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dev provider: listen on %s: %w", opts.Addr, err)
	}
	issuer := "http://" + ln.Addr().String()

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("dev provider: signing key: %w", err)
	}
	key := &signingKey{id: newID(), alg: jose.ES256, key: ecKey}
	c := &client{
		id:       ClientID,
		secret:   opts.ClientSecret,
		lifetime: opts.IDTokenLifetime,
		loginURL: func(id string) string { return "/login?authRequestID=" + id },
	}
	st := newStorage(opts, key, c)

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CryptoKeyId:           "devidp",
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       []string{"openid", "profile", "email", "offline_access", "groups"},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     opts.DeviceCodeLifetime,
			PollInterval: opts.PollInterval,
			UserFormPath: "/device",
			UserCode:     op.UserCodeBase20,
		},
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("dev provider: %w", err)
	}

	p := &Provider{issuer: issuer, storage: st, served: make(chan struct{})}
	pages := &pages{storage: st, opts: opts, provider: provider, issuer: issuer}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", pages.login)
	mux.HandleFunc("/device", pages.device)
	mux.Handle("/", provider)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			// Serve only fails this way if the listener breaks; nothing to do.
			_ = err
		}
	}()
	p.stop = context.AfterFunc(ctx, func() { _ = p.Close() })
	return p, nil
}

// Issuer is the provider's issuer URL, http://127.0.0.1:port.
func (p *Provider) Issuer() string { return p.issuer }

// Dev is always true: this provider is for development and demos only.
func (p *Provider) Dev() bool { return true }

// Close stops the provider and waits for its server to finish.
func (p *Provider) Close() error {
	var err error
	p.once.Do(func() {
		p.stop()
		err = p.srv.Close()
		<-p.served
	})
	return err
}

// ApproveDevice signs the device code userCode in as the user username, as
// if they had entered it at the verification page.
func (p *Provider) ApproveDevice(userCode, username string) error {
	return p.storage.approveDevice(userCode, username)
}

// DenyDevice refuses the device code userCode, as if the person had pressed
// "Deny" at the verification page.
func (p *Provider) DenyDevice(userCode string) error {
	return p.storage.denyDevice(userCode)
}
