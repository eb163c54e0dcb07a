// Package opapi is writ's operator API: the JSON endpoints under /v1/ that
// remote consoles and the operator CLI use to decide requests, revoke and
// freeze, read the audit log, and follow the broker's events live as
// Server-Sent Events.
//
// Authentication (RFC 8693 token exchange, RFC 9449 DPoP, RFC 6750):
// a client presents the operator's verified OIDC ID token at
// POST /v1/token together with a DPoP proof, and gets a short-lived
// operator token bound to its DPoP key. Every other /v1/ call carries that
// token as "Authorization: DPoP <token>" with a fresh proof; writ checks
// the token's signature, issuer, audience, approver group and expiry, and
// the proof's key and freshness, on every call. The ID token itself is
// never a bearer credential here.
//
// Every mutating call is audited by the broker under the operator the
// token names, and may carry an Idempotency-Key header: a repeated key
// returns the first answer and never applies the action twice.
//
// The event stream keeps a bounded ring of recent events with sequence
// ids, so a client that reconnects with Last-Event-ID gets exactly the
// events it missed, or a "resync" event when the ring no longer holds
// them (or the server restarted) and it must reload its snapshot.
package opapi
