// Package httpapi is writ's HTTP surface for agents and resource servers:
// OAuth metadata (RFC 8414, OpenID Discovery), the JWKS, task requests as
// CIBA backchannel authentication in poll mode (CIBA Core 1.0 §7) with
// RFC 9396 authorization details and RFC 8707 resource indicators, the
// CIBA token endpoint minting DPoP-bound tokens (RFC 9449), introspection
// (RFC 7662), revocation (RFC 7009), health and Prometheus metrics.
//
// [New] returns a [Server], an http.Handler; the console and `writ serve`
// mount the same handler, and other packages add routes to it with
// [Server.Handle] (the SSF transmitter's /ssf/... and well-known document).
//
// # Client authentication
//
// Every POST is authenticated, and only with client assertions: there
// are no client secrets. An agent signs an RFC 7523 assertion with one of
// its configured keys (private_key_jwt), or presents a JWT from its
// configured workload issuer (a SPIFFE JWT-SVID, verified through the
// issuer's OpenID discovery document with go-oidc and mapped to the agent
// by its exact sub). Resource servers authenticate to the introspection
// endpoint the same way, as OAuth clients of their own: the option
// ResourceClients gives each an id (by convention the resource URI it
// serves), its keys or workload identity, and the audiences whose tokens
// it may ask about. A token for any other audience is inactive to it, so a
// resource server learns nothing about tokens that are not for it.
//
// Resource servers (never agents) may also use the client credentials
// grant (RFC 6749 §4.4) at the token endpoint, for scopes ssf.read and
// ssf.manage: the result is a Bearer access token for the revocation feed
// only, which [Server.AuthenticateClientToken] checks when a receiver
// presents it, as the CAEP Interoperability Profile has SSF receivers do.
//
// # Choices where the standards leave room
//
//   - scope need not contain openid (CIBA §7.1 asks for it because a CIBA
//     server is an OpenID Provider; writ mints access tokens for tasks, and
//     returns an ID token naming the approver only when openid is asked for).
//   - login_hint is the only hint: it names the approver queue. id_token_hint
//     and login_hint_token are refused with invalid_request.
//   - binding_message carries the task's intent. When it is absent, the
//     intent of the authorization details is used if they agree on one.
//   - resource may be left out when the agent may ask for one resource only.
//   - At the backchannel endpoint an agent over its rate limit gets 429
//     slow_down with Retry-After; at the token endpoint slow_down is 400, as
//     CIBA §11 says.
//   - Parameters in the query string are refused, as are duplicate
//     parameters (RFC 6749 §3.1), other content types than the form type,
//     bodies over Options.MaxBodyBytes, and text that is not UTF-8.
//     Unknown parameters are ignored (RFC 6749 §3.2).
//
// Tokens are never logged whole: logs name them by a short prefix and
// their jti.
package httpapi
