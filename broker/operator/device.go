package operator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// DeviceAuth is a started device authorization (RFC 8628 §3.2): what the
// console shows while it polls.
type DeviceAuth struct {
	// UserCode is what the person types at VerificationURI.
	UserCode string
	// VerificationURI is where to type it.
	VerificationURI string
	// VerificationURIComplete carries the code too (for the QR code); it is
	// VerificationURI when the provider gives none.
	VerificationURIComplete string
	// Expiry is when the code stops working.
	Expiry time.Time
	// Interval is how often the console polls (slow_down raises it).
	Interval time.Duration

	response *oauth2.DeviceAuthResponse
}

// StartDevice discovers the provider and asks it for a device code.
func (c *Client) StartDevice(ctx context.Context) (*DeviceAuth, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	if p.Endpoint().DeviceAuthURL == "" {
		return nil, fmt.Errorf("operator sign-in: the provider at %s has no device_authorization_endpoint: enable the device flow for this client or use --login browser", c.cfg.Issuer)
	}
	var opts []oauth2.AuthCodeOption
	if c.cfg.ClientSecret != "" {
		// x/oauth2 sends only client_id here; RFC 8628 §3.1 wants a
		// confidential client to authenticate (client_secret_post).
		opts = append(opts, oauth2.SetAuthURLParam("client_secret", c.cfg.ClientSecret))
	}
	hctx := c.httpContext(ctx)
	resp, err := c.oauth2Config(p, "").DeviceAuth(hctx, opts...)
	if err != nil {
		return nil, c.flowError(ctx, "device authorization", err)
	}
	if resp.UserCode == "" || resp.DeviceCode == "" || resp.VerificationURI == "" {
		return nil, fmt.Errorf("operator sign-in: the provider's device authorization response lacks user_code, device_code or verification_uri")
	}
	da := &DeviceAuth{
		UserCode:                resp.UserCode,
		VerificationURI:         resp.VerificationURI,
		VerificationURIComplete: resp.VerificationURIComplete,
		Expiry:                  resp.Expiry,
		Interval:                5 * time.Second, // RFC 8628 §3.2: the default
		response:                resp,
	}
	if resp.Interval > 0 {
		da.Interval = time.Duration(resp.Interval) * time.Second
	}
	if da.VerificationURIComplete == "" {
		da.VerificationURIComplete = da.VerificationURI
	}
	c.cfg.Logger.Debug("device authorization started", "issuer", c.cfg.Issuer, "expiry", da.Expiry)
	return da, nil
}

// WaitDevice polls until the person signs in, refuses, or the code expires,
// honouring interval and slow_down, then verifies the ID token. It returns
// ErrDeviceCodeExpired, ErrAccessDenied, *NotApproverError, *VerifyError,
// *UnreachableError or ctx's error.
func (c *Client) WaitDevice(ctx context.Context, da *DeviceAuth) (*Session, error) {
	if da == nil || da.response == nil {
		return nil, errors.New("operator sign-in: WaitDevice needs the DeviceAuth from StartDevice")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := c.oauth2Config(p, "").DeviceAccessToken(c.httpContext(ctx), da.response)
	if err != nil {
		// DeviceAccessToken bounds polling by the code's expiry with a
		// context deadline of its own: that deadline passing is expiry.
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, ErrDeviceCodeExpired
		}
		return nil, c.flowError(ctx, "device token", err)
	}
	s, err := c.sessionFromToken(ctx, p, tok, verifyCheck{})
	if err != nil {
		return nil, err
	}
	c.remember(s)
	return s, nil
}

// flowError maps an OAuth error response or a transport failure from a flow
// step to the errors the console shows.
func (c *Client) flowError(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			return ErrAccessDenied
		case "expired_token":
			return ErrDeviceCodeExpired
		case "":
			status := "no OAuth error"
			if re.Response != nil {
				status = re.Response.Status
			}
			return fmt.Errorf("operator sign-in: %s at %s failed: %s", step, c.cfg.Issuer, status)
		}
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		return fmt.Errorf("operator sign-in: %s refused by %s: %s", step, c.cfg.Issuer, msg)
	}
	return c.transportError(ctx, fmt.Errorf("%s: %w", step, err))
}
