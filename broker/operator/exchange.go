package operator

import "context"

// VerifyIDToken verifies an ID token presented on its own, as a remote
// console or the operator CLI presents it to `writ serve` in the RFC 8693
// token exchange: signature, iss, aud (this client id), exp, azp and the
// approver group, exactly as at sign-in. There is no nonce and no access
// token to check against, so at_hash is not checked. Refusals are
// *VerifyError or *NotApproverError; an unreachable provider is
// *UnreachableError.
func (c *Client) VerifyIDToken(ctx context.Context, raw string) (*Session, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	return c.verifyIDToken(ctx, p, raw, nil, verifyCheck{alone: true})
}
