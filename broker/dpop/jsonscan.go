package dpop

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// A small scanner over one JSON object, so the hot path reads members
// without reflection and without allocating for names or plain strings.
// encoding/json matches field names case-insensitively; the names in a JOSE
// header and a JWT claims set are case-sensitive, and here they are.

var (
	errNotObject = errors.New("not a JSON object")
	errDuplicate = errors.New("duplicate member")
)

// eachMember validates data as one JSON object and calls fn with each
// member's name (unescaped, without quotes) and its raw value.
func eachMember(data []byte, fn func(name, value []byte) error) error {
	if !json.Valid(data) {
		return errors.New("not valid JSON")
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errNotObject
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) {
			return errNotObject
		}
		switch data[i] {
		case '}':
			return nil
		case ',':
			i = skipSpace(data, i+1)
		}
		end := valueEnd(data, i)
		if end <= i || data[i] != '"' {
			return errNotObject
		}
		name, err := unquote(data[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return errNotObject
		}
		i = skipSpace(data, i+1)
		end = valueEnd(data, i)
		if end <= i {
			return errNotObject
		}
		if err := fn(name, data[i:end]); err != nil {
			return err
		}
		i = end
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at i, which
// json.Valid has already vouched for; it returns i on anything unexpected.
func valueEnd(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return i
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			case '"':
				end := valueEnd(data, j)
				if end <= j {
					return i
				}
				j = end - 1
			}
		}
		return i
	}
	j := i
	for ; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return j
}

// unquote returns the contents of a JSON string value: a subslice when it
// has no escapes, a fresh decoding otherwise. Non-strings are an error.
func unquote(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, errors.New("not a string")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// numericDate parses a JWT NumericDate (RFC 7519 §2): seconds since the
// epoch, possibly fractional, as whole seconds and nanoseconds.
func numericDate(raw []byte) (sec, nsec int64, ok bool) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, 0, false
	}
	// ±2^40 s is some 35,000 years: beyond it no window can match, and
	// time.Unix and the float conversion below stay exact.
	const limit = 1 << 40
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, 0, n > -limit && n < limit
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != f || f >= limit || f <= -limit {
		return 0, 0, false
	}
	sec = int64(f)
	nsec = int64((f - float64(sec)) * 1e9)
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return sec, nsec, true
}

// seen records member bit in mask, failing on a second occurrence: RFC 7515
// §4 lets a parser reject duplicate header names, and an exact parser does.
func seen(mask *uint32, bit uint32) error {
	if *mask&bit != 0 {
		return errDuplicate
	}
	*mask |= bit
	return nil
}
