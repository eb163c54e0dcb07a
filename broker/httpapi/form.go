package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what a form may hold. A task request with a handful of
// authorization details is a few KiB; anything near these is not a client
// following the protocol.
const (
	// DefaultMaxBodyBytes caps a request body.
	DefaultMaxBodyBytes = 64 << 10
	maxFormParams       = 32
)

// form is a strictly parsed application/x-www-form-urlencoded body: each
// parameter at most once (RFC 6749 §3.1), values valid UTF-8, parameters
// sent without a value treated as omitted.
type form map[string]string

// get returns the value of a parameter, "" when absent.
func (f form) get(name string) string { return f[name] }

// has reports whether a parameter was sent with a value.
func (f form) has(name string) bool { _, ok := f[name]; return ok }

// readForm reads and parses the body of r: a POST with the form content
// type, no query string (parameters belong in the body, where they are not
// logged by every proxy on the way), at most limit bytes.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) (form, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest,
			Description: "use POST with an application/x-www-form-urlencoded body"}
	}
	if r.URL.RawQuery != "" {
		return nil, badRequest("parameters go in the form body, not the query string")
	}
	if ct := r.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != formContentType {
		if err := checkFormContentType(ct); err != nil {
			return nil, err
		}
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &oauthError{Status: http.StatusRequestEntityTooLarge, Code: errInvalidRequest,
				Description: "request body is larger than " + byteCount(limit)}
		}
		return nil, badRequest("request body could not be read")
	}
	return parseForm(string(body))
}

// formContentType is the form content type as clients spell it; any
// other spelling goes through checkFormContentType.
const formContentType = "application/x-www-form-urlencoded"

// readBody reads the body of r, at most limit bytes. A body whose
// Content-Length is within the limit is read into one buffer of that
// size (net/http's body reader stops at the declared length, and a
// shorter body is an error); any other goes through http.MaxBytesReader,
// whose error says it is too large.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// checkFormContentType accepts exactly one Content-Type, the form type,
// with at most a UTF-8 charset parameter.
func checkFormContentType(values []string) *oauthError {
	if len(values) != 1 {
		return badRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != formContentType {
		return badRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return badRequest("Content-Type parameter %s=%q is not supported; the body must be UTF-8", clip(k), clip(v))
		}
	}
	return nil
}

// parseForm parses a form body strictly. It never panics, whatever the input.
func parseForm(body string) (form, *oauthError) {
	out := make(form)
	seen := 0
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		seen++
		if seen > maxFormParams {
			return nil, badRequest("the form has more than %d parameters", maxFormParams)
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err1 := unescape(rawKey)
		value, err2 := unescape(rawValue)
		if err1 != nil || err2 != nil {
			return nil, badRequest("the form body is not valid application/x-www-form-urlencoded")
		}
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return nil, badRequest("the form body is not valid UTF-8")
		}
		if key == "" {
			return nil, badRequest("the form has a parameter without a name")
		}
		if _, dup := out[key]; dup {
			if key == "resource" {
				return nil, &oauthError{Status: http.StatusBadRequest, Code: "invalid_target",
					Description: "send exactly one resource: a writ token has one audience"}
			}
			return nil, badRequest("parameter %s is included more than once", clip(key))
		}
		out[key] = value
	}
	// RFC 6749 §3.1: parameters sent without a value are treated as if
	// omitted. A duplicate is refused even when one copy is empty.
	for k, v := range out {
		if v == "" {
			delete(out, k)
		}
	}
	return out, nil
}

// unescape is url.QueryUnescape, without its byte-by-byte scan of the
// values that need none (tokens and assertions are base64url and dots).
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// clip renders a caller-supplied value for an error description: at most 64
// bytes, control characters escaped.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
