package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ssf"
)

// The revocation feed (SSF transmitter) shares the agent API's public URL.
// Receivers are the configured resource servers. A standard SSF receiver
// presents an access token it got at /token with the client credentials
// grant (scopes ssf.read, ssf.manage); writ's guard instead sends a fresh
// client assertion (private_key_jwt or a workload JWT) as the Bearer
// credential on every call. Both are accepted.
func init() {
	apiMounts = append(apiMounts, mountSSF)
}

func mountSSF(srv *httpapi.Server, env *brokerEnv) error {
	egress, err := ssf.ParseEgress(env.Service.Config().PushAllow)
	if err != nil {
		return fmt.Errorf("revocation feed: push_allow: %w", err)
	}
	t, err := ssf.New(context.Background(), env.Service, ssf.Options{
		Egress:                egress,
		MaxStreamsPerReceiver: env.Service.Config().FeedStreamsPerReceiver,
		Logger:                env.Log,
		Authenticate:          func(r *http.Request) (string, error) { return authenticateReceiver(srv, r) },
		// Receivers are resource servers, each known by its resource URI:
		// one learns only of the grants for its own resource.
		// Resources are exact: a grant's events go to its own resource's receivers only.
		Serves: func(receiver, resource string) bool { return resource == receiver },
	})
	if err != nil {
		return errors.Join(errors.New("revocation feed"), err)
	}
	for _, p := range t.Patterns() {
		srv.Handle(p, t)
	}
	srv.Registry().MustRegister(t.Collector())
	env.runners = append(env.runners, t.Run)
	return nil
}

// authenticateReceiver identifies the resource server calling the feed by
// its Bearer credential: an access token (typ at+jwt) from the client
// credentials grant with a scope the route accepts, or a client assertion.
func authenticateReceiver(srv *httpapi.Server, r *http.Request) (string, error) {
	a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || a == "" {
		return "", broker.Errorf(broker.EUNAUTHORIZED, "the revocation feed needs a Bearer credential: an access token from the client credentials grant, or a client assertion")
	}
	var c *httpapi.Client
	var err error
	if httpapi.IsAccessToken(a) {
		c, err = srv.AuthenticateClientToken(a, ssf.RequiredScopes(r))
	} else {
		c, err = srv.AuthenticateAssertion(r.Context(), httpapi.AssertionTypeJWTBearer, a, "", srv.Issuer()+r.URL.Path)
	}
	if err != nil {
		return "", err
	}
	if c.Resource == nil {
		return "", broker.Errorf(broker.EFORBIDDEN, "only resource servers may follow the revocation feed")
	}
	return c.ID, nil
}
