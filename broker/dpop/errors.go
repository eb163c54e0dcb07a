package dpop

import (
	"errors"
	"fmt"
	"strconv"
)

// Reasons a proof is refused. They are stable: callers switch on them, logs
// and metrics count them.
const (
	ReasonMissing    = "missing"           // no DPoP header
	ReasonMultiple   = "multiple"          // more than one DPoP header value
	ReasonMalformed  = "malformed"         // not a compact JWS of JSON objects
	ReasonType       = "typ"               // typ is not dpop+jwt
	ReasonAlg        = "alg"               // alg is not on the allow-list
	ReasonKey        = "jwk"               // jwk missing, private, malformed or not for alg
	ReasonSignature  = "signature"         // the signature does not verify with jwk
	ReasonClaims     = "claims"            // a required claim is missing or of the wrong type
	ReasonMethod     = "htm"               // htm differs from the request method
	ReasonURI        = "htu"               // htu differs from the request URI
	ReasonIssuedAt   = "iat"               // iat outside the acceptance window
	ReasonTokenHash  = "ath"               // ath missing or not the hash of the access token
	ReasonNonce      = "nonce"             // nonce missing or not acceptable: answer use_dpop_nonce
	ReasonReplay     = "replay"            // this proof (jkt, htu, jti) was already used
	ReasonReplayFull = "replay_cache_full" // the replay cache is full: a server capacity fault; 503 fits
	// ReasonReplayQuota: this client holds its quota of live proofs; it
	// is sending too many, so answer 429 slow_down with Retry-After.
	ReasonReplayQuota = "replay_quota"
)

// OAuth error codes a refused proof maps to (RFC 9449 §5, §7.1, §8, §9).
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Error is why a DPoP proof was refused: a Reason for machines and a
// message for people. Messages never contain a token or a whole proof, and
// values taken from the proof are clipped and quoted.
type Error struct {
	Reason string
	Msg    string
	Err    error // the underlying cause, if any
}

func (e *Error) Error() string { return "dpop: " + e.Msg }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Code is the OAuth error code for the response: use_dpop_nonce when the
// proof lacks the server's current nonce, invalid_dpop_proof otherwise.
func (e *Error) Code() string {
	if e.Reason == ReasonNonce {
		return CodeUseNonce
	}
	return CodeInvalidProof
}

// Reason returns the Reason of a refused proof, or "" when err is not an
// *Error (nil, or a server fault such as a missing replay cache).
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// errReplayFull is the one allocation-free refusal on the hot path.
var errReplayFull = &Error{Reason: ReasonReplayFull,
	Msg: "replay cache is full; refusing the proof rather than forgetting earlier ones"}

var errReplayQuota = &Error{Reason: ReasonReplayQuota,
	Msg: "too many proofs from this client in the replay window; slow down"}

// show renders an attacker-supplied value for a message: plain when it is a
// short run of safe characters, otherwise quoted, ASCII-escaped and clipped
// to 64 bytes so a message never carries control characters or a long blob.
func show(s string) string {
	const limit = 64
	plain := len(s) > 0 && len(s) <= limit
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = c > ' ' && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		return s
	}
	if len(s) > limit {
		return strconv.QuoteToASCII(s[:limit]) + "..."
	}
	return strconv.QuoteToASCII(s)
}
