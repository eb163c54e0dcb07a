package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxLocationLength bounds a location (an authorization detail's location
// or a path a resource server checks), in bytes.
const MaxLocationLength = 2048

// CheckLocation is writ's one rule for locations (broker.CheckLocation
// wraps it with writ's error codes), used by writ when an
// agent names a location in an authorization detail (it must lie within
// the resource) and by the guard when a resource server asks whether a
// request's location lies within a granted one. It returns loc in normal
// form (scheme and host lower case, default port dropped, a trailing slash
// dropped, percent escapes in upper case) when loc lies within within, and
// an error saying why not otherwise.
//
// A location must be an absolute http(s) URL of plain ASCII, without
// userinfo, query or fragment, and its path must be unambiguous: servlet
// containers, proxies and URL builders disagree about path parameters
// ("/a/..;/admin"), empty segments ("//other.example/x"), backslashes,
// encoded dots, slashes or percent signs ("%2e%2e", "%252e") and
// look-alike characters (a full-width dot), so each of those is refused
// rather than interpreted. Dot segments ("." and "..") are refused too.
// Containment is segment by segment: /repos/acme covers /repos/acme and
// /repos/acme/x, never /repos/acme-evil.
func CheckLocation(loc, within string) (string, error) {
	l, err := parseLocation(loc)
	if err != nil {
		return "", fmt.Errorf("location %s %v", quoteLocation(loc), err)
	}
	w, err := parseLocation(within)
	if err != nil {
		return "", fmt.Errorf("location %s cannot be checked against %s, which %v", quoteLocation(loc), quoteLocation(within), err)
	}
	if l.origin != w.origin {
		return "", fmt.Errorf("location %s is not at %s", quoteLocation(loc), w.origin)
	}
	if len(l.segs) < len(w.segs) {
		return "", fmt.Errorf("location %s is not within %s", quoteLocation(loc), quoteLocation(within))
	}
	for i, s := range w.segs {
		if l.segs[i] != s {
			return "", fmt.Errorf("location %s is not within %s", quoteLocation(loc), quoteLocation(within))
		}
	}
	return l.String(), nil
}

// location is a parsed location: origin (scheme://host[:port]) and path
// segments, each in normal form.
type location struct {
	origin string
	segs   []string
}

func (l location) String() string {
	if len(l.segs) == 0 {
		return l.origin
	}
	return l.origin + "/" + strings.Join(l.segs, "/")
}

func parseLocation(s string) (location, error) {
	if len(s) > MaxLocationLength {
		return location{}, fmt.Errorf("is longer than %d bytes", MaxLocationLength)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			return location{}, errors.New("is not plain ASCII (characters such as a full-width dot look like '.' or '/'; percent-encode nothing but ordinary characters)")
		case c <= ' ' || c == 0x7f:
			return location{}, errors.New("contains a space or a control character")
		case c == '\\':
			return location{}, errors.New("contains a backslash")
		case c == ';':
			return location{}, errors.New("has a path parameter (;)")
		case c == '?':
			return location{}, errors.New("has a query")
		case c == '#':
			return location{}, errors.New("has a fragment")
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "https" && scheme != "http") {
		return location{}, errors.New("is not an absolute http(s) URL")
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, err := normalHost(scheme, authority)
	if err != nil {
		return location{}, err
	}
	l := location{origin: scheme + "://" + host}
	if path == "" || path == "/" {
		return l, nil
	}
	segs := strings.Split(strings.TrimSuffix(path[1:], "/"), "/")
	for i, seg := range segs {
		switch seg {
		case "":
			return location{}, errors.New("has an empty path segment (//)")
		case ".", "..":
			return location{}, errors.New("has a dot segment (. or ..)")
		}
		if segs[i], err = normalSegment(seg); err != nil {
			return location{}, err
		}
	}
	l.segs = segs
	return l, nil
}

// normalHost checks an authority (host and optional port; no userinfo)
// and returns it in lower case without the scheme's default port.
func normalHost(scheme, authority string) (string, error) {
	if strings.Contains(authority, "@") {
		return "", errors.New("has userinfo (user@host)")
	}
	if authority == "" {
		return "", errors.New("has no host")
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", errors.New("has an unterminated IPv6 address")
		}
		host, port = authority[:end+1], authority[end+1:]
		for _, c := range host[1:end] {
			if !isHex(byte(c)) && c != ':' && c != '.' {
				return "", errors.New("has an invalid IPv6 address")
			}
		}
	} else if i := strings.IndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i:]
	}
	if port != "" {
		p := strings.TrimPrefix(port, ":")
		n, err := strconv.Atoi(p)
		if !strings.HasPrefix(port, ":") || err != nil || n < 1 || n > 65535 || strings.TrimLeft(p, "0123456789") != "" {
			return "", errors.New("has an invalid port")
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		} else {
			port = ":" + strconv.Itoa(n)
		}
	}
	if !strings.HasPrefix(host, "[") {
		if host == "" || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.Contains(host, "..") {
			return "", errors.New("has an invalid host name")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
				return "", errors.New("has an invalid host name (letters, digits, '.' and '-' only)")
			}
		}
	}
	return strings.ToLower(host) + port, nil
}

// normalSegment checks the percent escapes of one path segment and writes
// them in upper case. An escape of '.', '/', '\', '%', ';', '?', '#', a
// control or a non-ASCII byte is refused: decoded once or twice, by one
// component or another, it changes what the path names.
func normalSegment(seg string) (string, error) {
	if !strings.Contains(seg, "%") {
		return seg, nil
	}
	b := []byte(seg)
	for i := 0; i < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
			return "", errors.New("has a malformed percent escape")
		}
		v := unhex(b[i+1])<<4 | unhex(b[i+2])
		switch {
		case v == '.', v == '/', v == '\\', v == '%', v == ';', v == '?', v == '#':
			return "", fmt.Errorf("has an encoded %q (%%%c%c): write paths plainly", rune(v), b[i+1], b[i+2])
		case v <= ' ' || v >= 0x7f:
			return "", errors.New("has an encoded control, space or non-ASCII byte")
		}
		b[i+1], b[i+2] = upper(b[i+1]), upper(b[i+2])
		i += 2
	}
	return string(b), nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// quoteLocation shows an agent-chosen location in a message: quoted, with
// anything unusual escaped, and clipped.
func quoteLocation(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.QuoteToASCII(s)
}
