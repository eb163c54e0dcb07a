package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// workloadAlgs are the algorithms accepted in workload identity tokens: a
// SPIFFE JWT-SVID is RS, ES or PS at 256, 384 or 512 (JWT-SVID §2.1);
// cloud workload tokens add EdDSA.
var workloadAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// discoveryRetry is how long a failed discovery is remembered before it is
// tried again: an unreachable issuer must not turn every request into an
// outbound call, and must not lock its agents out for long either.
const discoveryRetry = 30 * time.Second

// workloadVerifiers verifies JWTs from trusted workload issuers. Each
// issuer is discovered once (OpenID Connect Discovery), on first use, and
// its keys are fetched and refreshed by go-oidc.
type workloadVerifiers struct {
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	providers map[string]*provider
}

type provider struct {
	ready chan struct{} // closed when p or err is set
	p     *oidc.Provider
	err   error
	at    time.Time
}

func newWorkloadVerifiers(client *http.Client, now func() time.Time) *workloadVerifiers {
	return &workloadVerifiers{client: client, now: now, providers: make(map[string]*provider)}
}

// provider returns the discovered provider of issuer, discovering it
// if need be. Concurrent callers share one discovery.
func (w *workloadVerifiers) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	w.mu.Lock()
	p, ok := w.providers[issuer]
	if ok {
		select {
		case <-p.ready:
			if p.err != nil && time.Since(p.at) > discoveryRetry {
				ok = false
			}
		default:
		}
	}
	if !ok {
		p = &provider{ready: make(chan struct{})}
		w.providers[issuer] = p
		w.mu.Unlock()
		w.discover(issuer, p)
		return p.p, p.err
	}
	w.mu.Unlock()
	select {
	case <-p.ready:
		return p.p, p.err
	case <-ctx.Done():
		return nil, fmt.Errorf("discovery of %s: %w", issuer, ctx.Err())
	}
}

// discover runs one discovery, bounded in time, on behalf of every caller
// waiting for it: it is detached from the request that started it, so
// that request giving up does not fail the discovery for the others.
func (w *workloadVerifiers) discover(issuer string, p *provider) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if w.client != nil {
		ctx = oidc.ClientContext(ctx, w.client)
	}
	p.p, p.err = oidc.NewProvider(ctx, issuer)
	if p.err != nil {
		p.err = fmt.Errorf("discovery of %s failed: %w", issuer, p.err)
	}
	p.at = time.Now()
	close(p.ready)
}

// verify checks raw: signed by issuer's keys, iss equal to issuer, aud
// containing audience, not expired, and sub exactly subject.
func (w *workloadVerifiers) verify(ctx context.Context, issuer, audience, subject, raw string) error {
	p, err := w.provider(ctx, issuer)
	if err != nil {
		return err
	}
	v := p.Verifier(&oidc.Config{ClientID: audience, SupportedSigningAlgs: workloadAlgs, Now: w.now})
	if w.client != nil {
		ctx = oidc.ClientContext(ctx, w.client)
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return err
	}
	if tok.Subject != subject {
		return errors.New("sub does not match the configured workload subject")
	}
	return nil
}
