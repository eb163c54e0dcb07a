package devidp

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage is the provider's in-memory state, behind one mutex: users, the
// client, pending authorization requests and device codes, issued tokens.
type storage struct {
	opts Options
	key  *signingKey

	mu            sync.Mutex
	client        *client
	authRequests  map[string]*authRequest  // by id
	codes         map[string]string        // authorization code → request id
	accessTokens  map[string]*accessToken  // by id
	refreshTokens map[string]*refreshToken // by token value
	devices       map[string]*deviceEntry  // by device code
	userCodes     map[string]string        // user code → device code
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest  = (*storage)(nil)
)

type accessToken struct {
	id, subject, clientID, refreshToken string
	audience, scopes                    []string
	expiry                              time.Time
}

type refreshToken struct {
	token, subject, clientID, accessTokenID string
	audience, scopes, amr                   []string
	authTime, expiry                        time.Time
}

type deviceEntry struct {
	userCode string
	state    *op.DeviceAuthorizationState
	issued   bool // the token was handed out: the code is spent
}

func newStorage(opts Options, key *signingKey, c *client) *storage {
	return &storage{
		opts:          opts,
		key:           key,
		client:        c,
		authRequests:  map[string]*authRequest{},
		codes:         map[string]string{},
		accessTokens:  map[string]*accessToken{},
		refreshTokens: map[string]*refreshToken{},
		devices:       map[string]*deviceEntry{},
		userCodes:     map[string]string{},
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// --- authorization code flow ---

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	ar := &authRequest{
		id:          newID(),
		created:     time.Now(),
		clientID:    req.ClientID,
		redirectURI: req.RedirectURI,
		state:       req.State,
		nonce:       req.Nonce,
		scopes:      req.Scopes,
		respType:    req.ResponseType,
		respMode:    req.ResponseMode,
		subject:     userID,
	}
	if req.CodeChallenge != "" {
		ar.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authRequests[ar.id] = ar
	return ar, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok {
		return nil, errors.New("auth request not found")
	}
	return ar, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or expired")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// signIn marks an authorization request as authenticated by user.
func (s *storage) signIn(id string, u User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok {
		return errors.New("this sign-in request is unknown or finished")
	}
	ar.subject, ar.done, ar.authTime = u.ID, true, time.Now()
	return nil
}

// --- tokens ---

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	t := s.newAccessToken(clientOf(req), "", req)
	return t.id, t.expiry, nil
}

func (s *storage) newAccessToken(clientID, refresh string, req op.TokenRequest) *accessToken {
	t := &accessToken{
		id:           newID(),
		subject:      req.GetSubject(),
		clientID:     clientID,
		refreshToken: refresh,
		audience:     req.GetAudience(),
		scopes:       req.GetScopes(),
		expiry:       time.Now().Add(s.opts.AccessTokenLifetime),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessTokens[t.id] = t
	return t
}

func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	clientID := clientOf(req)
	var amr []string
	var authTime time.Time
	if r, ok := req.(op.IDTokenRequest); ok {
		amr, authTime = r.GetAMR(), r.GetAuthTime()
	}
	if current != "" {
		// Rotate: the old refresh token and its access token are spent.
		s.mu.Lock()
		old, ok := s.refreshTokens[current]
		if ok {
			delete(s.refreshTokens, current)
			delete(s.accessTokens, old.accessTokenID)
		}
		s.mu.Unlock()
		if !ok || time.Now().After(old.expiry) {
			return "", "", time.Time{}, errors.New("invalid refresh token")
		}
	}
	next := newID()
	at := s.newAccessToken(clientID, next, req)
	rt := &refreshToken{
		token:         next,
		subject:       req.GetSubject(),
		clientID:      clientID,
		accessTokenID: at.id,
		audience:      req.GetAudience(),
		scopes:        req.GetScopes(),
		amr:           amr,
		authTime:      authTime,
		expiry:        time.Now().Add(s.opts.RefreshTokenLifetime),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshTokens[next] = rt
	return at.id, next, at.expiry, nil
}

func clientOf(req op.TokenRequest) string {
	if r, ok := req.(interface{ GetClientID() string }); ok {
		return r.GetClientID()
	}
	return ""
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || time.Now().After(rt.expiry) {
		return nil, op.ErrInvalidRefreshToken
	}
	cp := *rt
	return &refreshRequest{&cp}, nil
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.accessTokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.accessTokens, id)
			delete(s.refreshTokens, t.refreshToken)
		}
	}
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.accessTokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
		delete(s.accessTokens, rt.accessTokenID)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.key.alg}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// --- clients and claims ---

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, fmt.Errorf("client %q not found", id)
	}
	if s.client.secret != "" {
		return globClient{s.client}, nil
	}
	return s.client, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id || s.client.secret == "" || secret != s.client.secret {
		return errors.New("invalid client credentials")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, req.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expiry) {
		return errors.New("token is invalid or has expired")
	}
	return s.setUserinfo(info, t.subject, t.scopes)
}

func (s *storage) setUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.opts.userByID(subject)
	if !ok {
		return fmt.Errorf("user %q not found", subject)
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.Name = u.Name
			info.PreferredUsername = u.Username
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = true
		}
	}
	// Groups go out with every token, like a provider with a groups mapper.
	info.AppendClaims(s.opts.GroupsClaim, slices.Clone(u.Groups))
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expiry) || !slices.Contains(t.audience, clientID) {
		return errors.New("token is not active for this client")
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(info, subject, t.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Expiration = oidc.FromTime(t.expiry)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("the development provider has no JWT-profile clients")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the development provider has no JWT-profile clients")
}

func (s *storage) Health(context.Context) error { return nil }

// --- device authorization grant ---

func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	if clientID != s.client.id {
		s.mu.Unlock()
		return errors.New("client not found")
	}
	if _, dup := s.userCodes[userCode]; dup {
		s.mu.Unlock()
		return op.ErrDuplicateUserCode
	}
	s.purgeExpiredLocked()
	e := &deviceEntry{userCode: userCode, state: &op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}}
	s.devices[deviceCode] = e
	s.userCodes[userCode] = deviceCode
	auto := s.opts.AutoApprove
	s.mu.Unlock()

	if auto != "" {
		if err := s.approveDevice(userCode, auto); err != nil {
			slog.Warn("dev provider: auto-approve failed", "error", err)
		}
	}
	if hook := s.opts.OnDeviceCode; hook != nil {
		hook(userCode)
	}
	return nil
}

// purgeExpiredLocked drops device codes well past their expiry so user codes
// (low entropy) do not pile up.
func (s *storage) purgeExpiredLocked() {
	cutoff := time.Now().Add(-time.Minute)
	for dc, e := range s.devices {
		if e.state.Expires.Before(cutoff) {
			delete(s.devices, dc)
			delete(s.userCodes, e.userCode)
		}
	}
}

func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[deviceCode]
	if !ok || e.state.ClientID != clientID || e.issued {
		return nil, errors.New("device code not found for client")
	}
	cp := *e.state
	if cp.Done {
		// One token per code: the next poll with it is refused.
		e.issued = true
	}
	return &cp, nil
}

func (s *storage) deviceByUserCode(userCode string) (*deviceEntry, error) {
	e, ok := s.devices[s.userCodes[normalizeUserCode(userCode)]]
	if !ok {
		return nil, errors.New("unknown code: check it and try again")
	}
	if time.Now().After(e.state.Expires) {
		return nil, errors.New("this code has expired: start the sign-in again")
	}
	if e.state.Done || e.state.Denied {
		return nil, errors.New("this code has already been used")
	}
	return e, nil
}

func (s *storage) approveDevice(userCode, username string) error {
	u, ok := s.opts.userByName(username)
	if !ok {
		return fmt.Errorf("no user %q at the development provider", username)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.deviceByUserCode(userCode)
	if err != nil {
		return err
	}
	e.state.Subject, e.state.Done, e.state.AuthTime, e.state.AMR = u.ID, true, time.Now(), []string{"user"}
	return nil
}

func (s *storage) denyDevice(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.deviceByUserCode(userCode)
	if err != nil {
		return err
	}
	e.state.Denied = true
	return nil
}

// deviceScopes is what a pending code asks for, for the confirmation page.
func (s *storage) deviceScopes(userCode string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.deviceByUserCode(userCode)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.state.Scopes), nil
}

// --- keys ---

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key *ecdsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }
