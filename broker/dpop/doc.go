// Package dpop implements sender-constrained tokens per RFC 9449 (OAuth 2.0
// Demonstrating Proof of Possession): JWK thumbprints (RFC 7638), proofs for
// clients ([Signer], [NewProof], [Transport]) and proof checks for the
// authorization server and resource servers ([Verifier]).
//
// The package depends on nothing in writ. go-jose provides the key type at
// the edges ([Thumbprint], keys handed to [NewSigner]); the verification path
// parses the compact JWS itself and checks the signature with the standard
// library, because it runs on every request a resource server receives and a
// general JOSE parser costs about a fifth more CPU and a hundred allocations
// per proof.
//
// The checks are strict where RFC 9449 leaves room:
//   - typ is exactly "dpop+jwt"; alg is one of EdDSA (Ed25519), ES256,
//     ES384, PS256 (salt as long as the hash, RFC 7518 §3.5) and RS256,
//     further limited by [Verifier.Algs];
//   - base64url without padding or line breaks; header and claims are JSON
//     objects whose member names are case-sensitive and, for the members
//     read, not duplicated; a crit header is refused;
//   - the jwk is public (no d, p, q, dp, dq, qi, oth or k), of the key type
//     alg needs, in the minimal encodings of RFC 7518 (full-length EC
//     coordinates, RSA n without a leading zero, 2048 to 4096 bits), so the
//     thumbprint computed from it is the canonical one; EC points must be on
//     the curve, Ed25519 points canonical and not of small order;
//   - htu is compared after RFC 3986 §6.2.2–6.2.3 normalisation, without
//     the query and fragment of either side (neither is covered by a
//     proof); htu with userinfo is refused.
//
// Errors from [Verifier.Verify] are *[Error] values with a stable Reason;
// the authorization server answers them with 400 and [Error.Code] as the
// OAuth error, a resource server with 401 and [Verifier.Challenge].
package dpop
