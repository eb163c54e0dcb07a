// Package guard is the resource-server side of writ: net/http middleware
// and a plain Check that accept a request only when its writ access token
// is genuine, meant for this resource, live, used by the agent it was
// minted for, and covers the call.
//
// For each request the guard checks, in order:
//
//   - one Authorization header, scheme Bearer or DPoP (RFC 6750 §2.1, RFC 9449 §7.1);
//   - the token (RFC 9068 §4): typ at+jwt, an allowed alg, a signature by a
//     key in writ's JWKS (cached as Cache-Control says; an unknown kid
//     triggers a rate-limited refetch), iss, aud equal to this resource,
//     exp and nbf with a small leeway, and the jti, sid and sub writ always sets;
//   - sender constraint: a DPoP-bound token (cnf.jkt) only under the DPoP
//     scheme with a proof for this method and URL (htu from the configured
//     public URL, never from Host headers), fresh iat, ath of this token, a
//     jti not seen before, signed by the key the token is bound to;
//   - revocation: a deny set fed by writ's SSF revocation feed over a
//     long-poll stream the guard creates for itself, holding revoked grants
//     (sid), tokens (jti) and the agent and global revocation epochs; a
//     grant narrowed while live (CAEP token-claims-change) has its scopes,
//     authorization details and expiry cut down;
//   - freshness: until the feed has caught up, and whenever it has been
//     silent for longer than Config.StaleAfter (writ answers every long
//     poll within its timeout, so silence means trouble) or writ paused the
//     stream, the guard fails closed with 503 — or asks writ's
//     introspection endpoint, if one is configured — and logs why.
//
// A verified token is cached, so the next request with it costs a map
// lookup and an atomic load; nothing is verified twice. Refusals answer per
// RFC 6750 §3 and RFC 9449 §7.1: 400 invalid_request, 401 invalid_token or
// invalid_dpop_proof, 403 insufficient_scope, each with Bearer and DPoP
// challenges (algs listed, and resource_metadata: the URL of this
// resource's RFC 9728 metadata, which MetadataHandler serves), and a JSON
// body. An insufficient_scope answer names only the missing scopes, and
// for RequireAction also the one authorization detail (writ's type, the
// action, the location) that would cover the call, as the challenge's
// authorization_details parameter (base64url JSON) and in the body: the
// agent SDK's Task.StepUp asks for exactly that. Every decision about a token
// writ issued is reported back to writ in batches (accepted or refused, per
// grant), which is how the console shows "revoked 3s ago, 2 refused uses
// since, 0 accepted". Counters are available as Stats and in Prometheus
// text format from WriteMetrics; a Prometheus collector is in package
// guardprom, so that only a resource server that wants one links the
// Prometheus client.
package guard
