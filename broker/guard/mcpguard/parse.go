package mcpguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxBatch bounds the messages of a JSON-RPC batch.
const maxBatch = 64

// Needs reads a POST body (one JSON-RPC message, or a batch) and returns
// what its requests need: an action per tools/call and resources/read.
// Other messages need only a valid token. It refuses what the SDK might
// read differently: invalid JSON or UTF-8, a member given twice, a
// tools/call whose name or a resources/read whose uri is not a non-empty
// string.
func (m *Guard) Needs(body []byte) ([]Need, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("the body is not UTF-8")
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(body, &batch); err != nil {
			return nil, errors.New("the body is not a JSON-RPC batch")
		}
		if len(batch) > maxBatch {
			return nil, fmt.Errorf("a batch of %d messages (at most %d)", len(batch), maxBatch)
		}
		var out []Need
		for _, msg := range batch {
			n, err := m.need(msg)
			if err != nil {
				return nil, err
			}
			out = append(out, n...)
		}
		return out, nil
	}
	return m.need(body)
}

func (m *Guard) need(msg []byte) ([]Need, error) {
	fields, err := object(msg)
	if err != nil {
		return nil, fmt.Errorf("not a JSON-RPC message: %w", err)
	}
	rawMethod, ok := fields["method"]
	if !ok {
		return nil, nil // a response to the server's request
	}
	var method string
	if err := json.Unmarshal(rawMethod, &method); err != nil {
		return nil, errors.New("the method is not a string")
	}
	var key string
	switch method {
	case "tools/call":
		key = "name"
	case "resources/read":
		key = "uri"
	default:
		return nil, nil
	}
	params, err := object(fields["params"])
	if err != nil {
		return nil, fmt.Errorf("%s params: %w", method, err)
	}
	var v string
	if err := json.Unmarshal(params[key], &v); err != nil || v == "" {
		return nil, fmt.Errorf("%s needs a %s string", method, key)
	}
	if method == "tools/call" {
		return []Need{{Method: method, Location: m.location, Action: m.cfg.ToolAction(v)}}, nil
	}
	loc, action := m.cfg.ReadAction(v)
	return []Need{{Method: method, Location: loc, Action: action}}, nil
}

// object decodes a JSON object into its members, refusing a member given
// twice (decoders disagree on which one wins).
func object(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("not JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not JSON")
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("not JSON")
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("member %q given twice", key)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("not JSON")
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(raw, " \t\r\n"))) {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}
