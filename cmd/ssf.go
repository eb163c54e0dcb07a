package cmd

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ssf"
)

// The revocation feed (SSF transmitter) shares the agent API's public URL.
// Receivers are the configured resource servers, authenticated with a
// fresh client assertion (private_key_jwt or a workload JWT) as a Bearer
// credential on every call.
func init() {
	apiMounts = append(apiMounts, mountSSF)
}

func mountSSF(srv *httpapi.Server, env *brokerEnv) error {
	t, err := ssf.New(context.Background(), env.Service, ssf.Options{
		Logger: env.Log,
		Authenticate: func(r *http.Request) (string, error) {
			a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || a == "" {
				return "", broker.Errorf(broker.EUNAUTHORIZED, "the revocation feed needs a client assertion as a Bearer credential")
			}
			c, err := srv.AuthenticateAssertion(r.Context(), httpapi.AssertionTypeJWTBearer, a, "", srv.Issuer()+r.URL.Path)
			if err != nil {
				return "", err
			}
			if c.Resource == nil {
				return "", broker.Errorf(broker.EFORBIDDEN, "only resource servers may follow the revocation feed")
			}
			return c.ID, nil
		},
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
