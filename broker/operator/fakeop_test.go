package operator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fakeOP is a hand-made OpenID Provider for the negative cases: it mints
// whatever ID token a test asks for. Its authorization endpoint redirects at
// once, as if the person had signed in; its device code is approved at once.
type fakeOP struct {
	t      testing.TB
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	kid    string
	signer *ecdsa.PrivateKey // signs tokens; differs from key for a bad signature

	mu sync.Mutex
	// claims edits the claims of the next ID token; base holds valid ones.
	claims func(base map[string]any)
	// now is the fake's clock for iat/exp.
	now      time.Time
	authTime time.Time
	lastNon  string // the nonce of the last authorization request
	// refreshToken is handed out with each token response when set.
	refreshToken string
	// deviceError, when set, is the error every device poll returns;
	// deviceErrors are returned first, one per poll.
	deviceError  string
	deviceErrors []string
	devicePolls  []time.Time
	// noIDTokenOnRefresh drops the ID token from refresh responses.
	noIDTokenOnRefresh bool
	accessToken        string
}

const fakeClientID = "writ-test"

func newFakeOP(t testing.TB) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOP{t: t, key: key, signer: key, kid: "k1", now: time.Now().Truncate(time.Second), accessToken: "at-" + randomToken()}
	f.authTime = f.now.Add(-time.Minute)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", f.jwks)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /device", f.deviceAuth)
	f.srv = httptest.NewServer(mux) // 127.0.0.1, closed by Cleanup
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOP) issuer() string { return f.srv.URL }

func (f *fakeOP) set(fn func(f *fakeOP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                f.issuer(),
		"authorization_endpoint":                f.issuer() + "/authorize",
		"token_endpoint":                        f.issuer() + "/token",
		"device_authorization_endpoint":         f.issuer() + "/device",
		"jwks_uri":                              f.issuer() + "/jwks",
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
}

func (f *fakeOP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &f.key.PublicKey, KeyID: f.kid, Algorithm: "ES256", Use: "sig"},
	}})
}

func (f *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.set(func(f *fakeOP) { f.lastNon = q.Get("nonce") })
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(q.Get("redirect_uri"))
	v := url.Values{"code": {"code-1"}, "state": {q.Get("state")}}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (f *fakeOP) deviceAuth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               "dc-1",
		"user_code":                 "BCDF-GHJK",
		"verification_uri":          f.issuer() + "/activate",
		"verification_uri_complete": f.issuer() + "/activate?user_code=BCDF-GHJK",
		"expires_in":                600,
		"interval":                  1,
	})
}

func (f *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	grant := r.Form.Get("grant_type")
	switch grant {
	case "authorization_code":
		if r.Form.Get("code_verifier") == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "no code_verifier"})
			return
		}
	case "urn:ietf:params:oauth:grant-type:device_code":
		f.devicePolls = append(f.devicePolls, time.Now())
		if len(f.deviceErrors) > 0 {
			e := f.deviceErrors[0]
			f.deviceErrors = f.deviceErrors[1:]
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": e})
			return
		}
		if f.deviceError != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": f.deviceError})
			return
		}
	case "refresh_token":
		if r.Form.Get("refresh_token") != f.refreshToken {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
	}
	resp := map[string]any{"access_token": f.accessToken, "token_type": "Bearer", "expires_in": 3600}
	if !(grant == "refresh_token" && f.noIDTokenOnRefresh) {
		nonce := ""
		if grant == "authorization_code" {
			nonce = f.lastNon
		}
		resp["id_token"] = f.mintLocked(nonce)
	}
	if f.refreshToken != "" {
		resp["refresh_token"] = f.refreshToken
	}
	writeJSON(w, http.StatusOK, resp)
}

// mintLocked signs an ID token: valid claims, then the test's edits.
func (f *fakeOP) mintLocked(nonce string) string {
	sum := sha256.Sum256([]byte(f.accessToken))
	base := map[string]any{
		"iss":       f.issuer(),
		"sub":       "u-42",
		"aud":       fakeClientID,
		"iat":       f.now.Unix(),
		"exp":       f.now.Add(time.Hour).Unix(),
		"auth_time": f.authTime.Unix(),
		"at_hash":   base64.RawURLEncoding.EncodeToString(sum[:16]),
		"name":      "Priya Patel",
		"email":     "priya@example.com",
		"groups":    []string{"writ-approvers", "platform"},
	}
	if nonce != "" {
		base["nonce"] = nonce
	}
	if f.claims != nil {
		f.claims(base)
	}
	return f.sign(base)
}

func (f *fakeOP) sign(claims map[string]any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", f.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.signer}, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		f.t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
