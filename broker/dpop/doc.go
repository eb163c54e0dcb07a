// Package dpop implements sender-constrained tokens per RFC 9449 (OAuth 2.0
// Demonstrating Proof of Possession): JWK thumbprints (RFC 7638), proofs for
// clients ([Signer], [NewProof], [Transport]) and proof checks for the
// authorization server and resource servers ([Verifier]).
//
// The package depends on nothing in writ. go-jose provides the key type at
// the edges ([Thumbprint], keys handed to [NewSigner]); the verification path
// parses the compact JWS itself and checks the signature with the standard
// library, because it runs on every request a resource server receives and a
// general JOSE parser costs about a third more CPU and a hundred allocations
// per proof. The parser is strict: base64url without padding or line breaks,
// one JSON object per part, no duplicate members we read, no "crit", keys in
// their minimal RFC 7518 encodings so the thumbprint is canonical.
//
// Errors from [Verifier.Verify] are *[Error] values with a stable Reason;
// the authorization server answers them with 400 invalid_dpop_proof, a
// resource server with 401 and [Verifier.Challenge].
package dpop
