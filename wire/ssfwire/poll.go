package ssfwire

import "fmt"

// PollRequest is the body of a poll (RFC 8936 §2.4).
type PollRequest struct {
	// MaxEvents caps the SETs in the answer; 0 asks for none (an
	// acknowledgement-only request); nil leaves it to the transmitter.
	MaxEvents *int `json:"maxEvents,omitempty"`
	// ReturnImmediately asks for an answer at once even when nothing is
	// due; otherwise the request is a long poll.
	ReturnImmediately bool `json:"returnImmediately,omitempty"`
	// Ack lists the jti of every SET received and processed.
	Ack []string `json:"ack,omitempty"`
	// SetErrs reports SETs received but refused, by jti.
	SetErrs map[string]SetErr `json:"setErrs,omitempty"`
}

// SetErr is a receiver's refusal of one SET.
type SetErr struct {
	Err         string `json:"err"`
	Description string `json:"description,omitempty"`
}

// PollResponse is the answer to a poll (RFC 8936 §2.5).
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// Limits on a poll request.
const (
	maxAcks       = 10_000
	maxJTILen     = 256
	maxErrCodeLen = 64
	maxErrDescLen = 1024
)

// ParsePollRequest parses and checks a poll request body.
func ParsePollRequest(body []byte) (*PollRequest, error) {
	var req PollRequest
	if err := DecodeStrict(body, &req); err != nil {
		return nil, fmt.Errorf("the body is not a poll request: %v", err)
	}
	if req.MaxEvents != nil && *req.MaxEvents < 0 {
		return nil, fmt.Errorf("maxEvents must not be negative")
	}
	if len(req.Ack)+len(req.SetErrs) > maxAcks {
		return nil, fmt.Errorf("the request acknowledges more than %d SETs", maxAcks)
	}
	for _, jti := range req.Ack {
		if jti == "" || len(jti) > maxJTILen {
			return nil, fmt.Errorf("an ack entry is empty or longer than %d bytes", maxJTILen)
		}
	}
	for jti, e := range req.SetErrs {
		switch {
		case jti == "" || len(jti) > maxJTILen:
			return nil, fmt.Errorf("a setErrs key is empty or longer than %d bytes", maxJTILen)
		case e.Err == "" || len(e.Err) > maxErrCodeLen:
			return nil, fmt.Errorf("setErrs %s has no err, or one longer than %d bytes", Quote(jti), maxErrCodeLen)
		case len(e.Description) > maxErrDescLen:
			return nil, fmt.Errorf("setErrs %s has a description longer than %d bytes", Quote(jti), maxErrDescLen)
		}
	}
	return &req, nil
}
