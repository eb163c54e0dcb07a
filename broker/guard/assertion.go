package guard

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AssertionTypeJWTBearer is the client_assertion_type of an RFC 7523 assertion.
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// PrivateKeyJWT returns a Config.ClientAssertion that signs a fresh RFC
// 7523 client assertion for each request: iss = sub = clientID (the
// resource server's client id at writ), aud the audience asked for, a
// one-minute life and a random jti, typ client-authentication+jwt
// (draft-ietf-oauth-rfc7523bis). key is a private key (or a *jose.JSONWebKey
// holding one, whose kid is sent).
func PrivateKeyJWT(clientID string, key any, alg jose.SignatureAlgorithm) (func(ctx context.Context, audience string) (string, error), error) {
	if clientID == "" {
		return nil, errors.New("guard: PrivateKeyJWT needs a client id")
	}
	opts := (&jose.SignerOptions{}).WithType("client-authentication+jwt")
	if k, ok := key.(*jose.JSONWebKey); ok && k != nil && k.KeyID != "" {
		opts = opts.WithHeader("kid", k.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("guard: client assertion signer: %w", err)
	}
	return func(_ context.Context, audience string) (string, error) {
		var id [16]byte
		_, _ = rand.Read(id[:])
		now := time.Now()
		claims, err := json.Marshal(map[string]any{
			"iss": clientID, "sub": clientID, "aud": audience,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"jti": base64.RawURLEncoding.EncodeToString(id[:]),
		})
		if err != nil {
			return "", err
		}
		jws, err := signer.Sign(claims)
		if err != nil {
			return "", fmt.Errorf("sign client assertion: %w", err)
		}
		return jws.CompactSerialize()
	}, nil
}
