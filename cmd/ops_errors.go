package cmd

import (
	"errors"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/client"
)

// lostTo is the decision that won, when err is a decision that lost a race.
func lostTo(err error) *broker.Decision {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Body.Decision
	}
	return nil
}

func needsFresh(err error) bool { return client.NeedsFreshSignIn(err) }
