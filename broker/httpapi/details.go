package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/writhq/writ/broker"
)

// Bounds on authorization_details: an operator has to read all of it.
const (
	maxDetails       = 16
	maxDetailList    = 64
	maxDetailString  = 2048
	maxDetailsLength = 32 << 10
)

// detailsError is an invalid_authorization_details refusal (RFC 9396 §5).
func detailsError(format string, args ...any) *oauthError {
	return &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonInvalidDetails,
		Description: "authorization_details: " + fmt.Sprintf(format, args...)}
}

// parseDetails parses the authorization_details parameter (RFC 9396 §2):
// a JSON array of objects of writ's task type. Member names are matched
// exactly (encoding/json alone would match "Type" to "type"); a duplicate
// member, an unknown member, a member of the wrong JSON type, an empty
// string, or an unknown type is refused with invalid_authorization_details.
// Whether the values are allowed (locations within the resource, actions
// within the ceiling) is the broker's to say.
func parseDetails(raw string) ([]broker.AuthorizationDetail, *oauthError) {
	if len(raw) > maxDetailsLength {
		return nil, detailsError("longer than %d bytes", maxDetailsLength)
	}
	if !json.Valid([]byte(raw)) {
		return nil, detailsError("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, detailsError("must be a JSON array of objects")
	}
	var out []broker.AuthorizationDetail
	for dec.More() {
		if len(out) == maxDetails {
			return nil, detailsError("more than %d objects", maxDetails)
		}
		d, err := parseDetail(dec, len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if _, err := dec.Token(); err != nil {
		return nil, detailsError("must be a JSON array of objects")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, detailsError("has data after the array")
	}
	return out, nil
}

// parseDetail reads one object from dec.
func parseDetail(dec *json.Decoder, i int) (broker.AuthorizationDetail, *oauthError) {
	var d broker.AuthorizationDetail
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return d, detailsError("[%d] is not a JSON object", i)
	}
	seen := make(map[string]bool, 8)
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return d, detailsError("[%d] is not a JSON object", i)
		}
		if seen[name] {
			return d, detailsError("[%d] has member %q more than once", i, clip(name))
		}
		seen[name] = true
		var perr string
		switch name {
		case "type":
			d.Type, perr = readString(dec)
		case "identifier":
			d.Identifier, perr = readString(dec)
		case "intent":
			d.Intent, perr = readString(dec)
		case "locations":
			d.Locations, perr = readStrings(dec)
		case "actions":
			d.Actions, perr = readStrings(dec)
		case "datatypes":
			d.Datatypes, perr = readStrings(dec)
		case "privileges":
			d.Privileges, perr = readStrings(dec)
		default:
			return d, detailsError("[%d] has unknown member %q; the %s type has type, locations, actions, datatypes, identifier, privileges and intent",
				i, clip(name), broker.TaskDetailType)
		}
		if perr != "" {
			return d, detailsError("[%d].%s %s", i, name, perr)
		}
	}
	if _, err := dec.Token(); err != nil {
		return d, detailsError("[%d] is not a JSON object", i)
	}
	switch {
	case !seen["type"]:
		return d, detailsError("[%d] has no type", i)
	case d.Type != broker.TaskDetailType:
		// RFC 9396 §2: types compare by exact byte match.
		return d, detailsError("[%d] has unknown type %q; writ accepts %q", i, clip(d.Type), broker.TaskDetailType)
	}
	return d, nil
}

// readString reads a non-empty JSON string of bounded length.
func readString(dec *json.Decoder) (string, string) {
	tok, err := dec.Token()
	s, ok := tok.(string)
	switch {
	case err != nil || !ok:
		return "", "must be a string"
	case s == "":
		return "", "must not be empty"
	case len(s) > maxDetailString:
		return "", fmt.Sprintf("is longer than %d bytes", maxDetailString)
	case !utf8.ValidString(s):
		return "", "is not valid UTF-8"
	}
	return s, ""
}

// readStrings reads a JSON array of non-empty strings.
func readStrings(dec *json.Decoder) ([]string, string) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, "must be an array of strings"
	}
	out := []string{}
	for dec.More() {
		if len(out) == maxDetailList {
			return nil, fmt.Sprintf("has more than %d entries", maxDetailList)
		}
		s, perr := readString(dec)
		if perr != "" {
			return nil, "entries " + perr
		}
		out = append(out, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, "must be an array of strings"
	}
	if len(out) == 0 {
		// An absent list means "unrestricted" (RFC 9396 §2.2); an empty one
		// is ambiguous, so it is refused rather than guessed at.
		return nil, "must not be empty; leave the member out instead"
	}
	return out, ""
}
