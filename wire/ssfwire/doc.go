// Package ssfwire holds what a receiver of writ's revocation feed reads and
// sends: Security Event Tokens (RFC 8417) with their parser and verifier,
// the SSF 1.0 event types, subject formats and stream management bodies,
// the poll request and answer (RFC 8936), and writ's usage report.
//
// The transmitter (broker/ssf) and the receivers (broker/guard, and any
// resource server that polls the feed itself) share these types. It is a
// leaf: it imports the standard library and go-jose only, so a receiver
// that imports it does not pull in the issuer.
package ssfwire
