package ssfwire

// StreamConfig is an event stream's configuration as the management API
// shows it (SSF 1.0 §8.1.1).
type StreamConfig struct {
	StreamID                string   `json:"stream_id"`
	Issuer                  string   `json:"iss"`
	Audience                string   `json:"aud"`
	EventsSupported         []string `json:"events_supported"`
	EventsRequested         []string `json:"events_requested,omitempty"`
	EventsDelivered         []string `json:"events_delivered"`
	Delivery                Delivery `json:"delivery"`
	MinVerificationInterval int      `json:"min_verification_interval,omitempty"`
	Description             string   `json:"description,omitempty"`
	InactivityTimeout       int      `json:"inactivity_timeout,omitempty"`
}

// Delivery is how a stream's SETs reach the receiver (SSF 1.0 §6.1).
type Delivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is sent with every push (receiver-supplied).
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// StreamStatus is a stream's status (SSF 1.0 §8.1.2).
type StreamStatus struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// Metadata is the transmitter configuration metadata (SSF 1.0 §7.1).
type Metadata struct {
	SpecVersion              string                `json:"spec_version"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri"`
	DeliveryMethodsSupported []string              `json:"delivery_methods_supported"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint"`
	StatusEndpoint           string                `json:"status_endpoint"`
	VerificationEndpoint     string                `json:"verification_endpoint"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes"`
	DefaultSubjects          string                `json:"default_subjects"`
	// UsageEndpoint is writ's extension: where guards report the uses of
	// tokens they checked themselves.
	UsageEndpoint string `json:"writ_usage_endpoint,omitempty"`
}

// AuthorizationScheme names how receivers authenticate (SSF 1.0 §7.1.1).
type AuthorizationScheme struct {
	SpecURN string `json:"spec_urn"`
}

// EventsSupported are the event types writ's streams can carry.
var EventsSupported = []string{EventSessionRevoked, EventTokenClaimsChange, EventVerification, EventStreamUpdated}

// VerificationRequest is the body of a verification request (SSF 1.0 §8.1.4.2).
type VerificationRequest struct {
	StreamID string `json:"stream_id"`
	State    string `json:"state"`
}
