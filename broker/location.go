package broker

import "github.com/writhq/writ/wire"

// MaxLocationLength bounds a location, in bytes.
const MaxLocationLength = wire.MaxLocationLength

// CheckLocation is writ's one rule for locations (wire.CheckLocation,
// shared with the guard): it returns loc in normal form when it lies
// within within, and an EINVALID error (invalid_authorization_details)
// saying why not otherwise.
func CheckLocation(loc, within string) (string, error) {
	n, err := wire.CheckLocation(loc, within)
	if err != nil {
		return "", Errorf(EINVALID, "%s", err.Error()).WithReason(ReasonInvalidDetails)
	}
	return n, nil
}
