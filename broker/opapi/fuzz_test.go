package opapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
)

// FuzzParseEventID: a Last-Event-ID from any client is parsed without
// panicking, and only this process's ids in canonical form are resumed.
func FuzzParseEventID(f *testing.F) {
	h := newHub(8)
	for _, s := range []string{"", h.boot + "-1", h.boot + "-18446744073709551615", h.boot + "-99999999999999999999", "x-1", "-", h.boot + "--1", h.boot + "-+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		seq, ok := h.parseEventID(id)
		if ok && strings.TrimSpace(id) != h.eventID(seq) && strings.TrimSpace(id) != h.boot+"-0"+strings.TrimPrefix(h.eventID(seq), h.boot+"-") {
			// Leading zeros are the only other spelling ParseUint accepts.
			if !strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(id), h.boot+"-"), "0") {
				t.Fatalf("%q parsed as %d", id, seq)
			}
		}
		if ok && !strings.HasPrefix(strings.TrimSpace(id), h.boot+"-") {
			t.Fatalf("%q from another run accepted", id)
		}
	})
}

// FuzzReadBody: a decision or revocation body from the network is
// decoded or refused with EINVALID, never a panic or another error.
func FuzzReadBody(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"reason":"x"}`, `{"terms":{"scopes":["a"],"resource":"r","ttl":60000000000}}`,
		`{"reason":1}`, `{"unknown":true}`, `{} {}`, `[`, `{"freeze":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&DecideInput{}, &RevokeInput{}} {
			r := httptest.NewRequest(http.MethodPost, "/v1/x", bytes.NewReader(body))
			err := readBody(r, v)
			if err != nil && broker.ErrorCode(err) != broker.EINVALID {
				t.Fatalf("%q: %v", body, err)
			}
		}
	})
}
