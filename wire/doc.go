// Package wire holds the types writ puts on the wire that its SDKs read:
// the claims of an access token, RFC 9396 authorization details of writ's
// task type, the location check that says what a detail covers, RFC 9728
// protected-resource metadata, and the insufficient_scope challenge a
// guarded resource answers with.
//
// It is a leaf: it imports only the standard library, so a resource server
// (broker/guard, broker/guard/mcpguard) or an agent (broker/agent) that
// imports it does not pull in the issuer. The revocation feed's wire types
// are in wire/ssfwire, a leaf too.
package wire
