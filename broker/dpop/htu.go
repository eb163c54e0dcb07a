package dpop

import (
	"errors"
	"strconv"
	"strings"
)

// appendHTU appends the normalised form of the http(s) URI s to dst,
// without its query and fragment (RFC 9449 §4.2, §4.3 check 9). The
// normalisation is RFC 3986 §6.2.2 (case of scheme and host, upper-case
// percent-encoding hex, unreserved characters decoded, dot segments
// removed) and §6.2.3 for http and https (default port dropped, empty port
// dropped, empty path as "/"). URIs with userinfo are refused: RFC 9110
// §4.2.4 forbids generating them, and they have no place in a proof.
func appendHTU(dst []byte, s string) ([]byte, error) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return dst, errors.New("is not an absolute URI")
	}
	start := len(dst)
	for i := 0; i < colon; i++ {
		c := lower(s[i])
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return dst, errors.New("has a malformed scheme")
		}
		dst = append(dst, c)
	}
	var defaultPort int
	switch string(dst[start:]) {
	case "https":
		defaultPort = 443
	case "http":
		defaultPort = 80
	default:
		return dst, errors.New("is not an http or https URI")
	}
	rest, ok := strings.CutPrefix(s[colon+1:], "//")
	if !ok {
		return dst, errors.New("has no authority")
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return dst, errors.New("has userinfo")
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return dst, errors.New("has an unclosed IP literal")
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" && port[0] != ':' {
			return dst, errors.New("has a malformed host")
		}
	} else if i := strings.IndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i:]
	}
	if host == "" {
		return dst, errors.New("has no host")
	}
	dst = append(dst, "://"...)
	var err error
	if dst, err = appendPct(dst, host, true); err != nil {
		return dst, err
	}
	if len(port) > 1 { // ":" alone is an empty port, dropped
		n := 0
		for i := 1; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return dst, errors.New("has a port that is not a number")
			}
			if n = n*10 + int(port[i]-'0'); n > 65535 {
				return dst, errors.New("has a port out of range")
			}
		}
		if n != defaultPort {
			dst = strconv.AppendInt(append(dst, ':'), int64(n), 10)
		}
	}
	pathStart := len(dst)
	if path == "" {
		return append(dst, '/'), nil
	}
	if dst, err = appendPct(dst, path, false); err != nil {
		return dst, err
	}
	return removeDotSegments(dst, pathStart), nil
}

// appendPct appends s with percent-encodings normalised: hex in upper case,
// unreserved characters decoded. With host set, letters are lower-cased too.
func appendPct(dst []byte, s string, host bool) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return dst, errors.New("has a malformed percent-encoding")
			}
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
			if isUnreserved(v) {
				if host {
					v = lower(v)
				}
				dst = append(dst, v)
				continue
			}
			dst = append(dst, '%', upperHex[v>>4], upperHex[v&15])
		case c <= ' ' || c >= 0x7f:
			return dst, errors.New("has a character that must be percent-encoded")
		case host:
			dst = append(dst, lower(c))
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// removeDotSegments applies RFC 3986 §5.2.4 to the path in buf[start:].
// Percent-encoded dots were decoded by appendPct first, as §6.2.2.3 expects.
func removeDotSegments(buf []byte, start int) []byte {
	path := buf[start:]
	if !hasDotSegment(path) {
		return buf
	}
	in := string(path) // the output is written over the input
	out := buf[:start]
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"), in == "/..":
			in = "/" + in[min(len(in), 4):]
			if i := lastSlash(out[start:]); i >= 0 {
				out = out[:start+i]
			} else {
				out = out[:start]
			}
		case in == "." || in == "..":
			in = ""
		default:
			j := strings.IndexByte(in[1:], '/') + 1
			if j == 0 {
				j = len(in)
			}
			out = append(out, in[:j]...)
			in = in[j:]
		}
	}
	if len(out) == start {
		out = append(out, '/')
	}
	return out
}

func hasDotSegment(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '.' && (i == 0 || p[i-1] == '/') {
			j := i + 1
			if j < len(p) && p[j] == '.' {
				j++
			}
			if j == len(p) || p[j] == '/' {
				return true
			}
		}
	}
	return false
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func isUnreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
