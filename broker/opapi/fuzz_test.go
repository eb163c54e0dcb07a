package opapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/store/storetest"
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

// FuzzVerifyToken: whatever arrives as an operator token is refused with
// an invalid_token challenge unless writ signed it; nothing panics.
func FuzzVerifyToken(f *testing.F) {
	svc, err := broker.New(context.Background(), &broker.Config{}, storetest.MustOpen(f), broker.Options{Issuer: "https://writ.test"})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(svc, Options{PublicURL: "https://writ.test", Verifier: noVerifier{}, ApproverGroup: "g"})
	if err != nil {
		f.Fatal(err)
	}
	good, err := svc.Sign(TokenType, opClaims{Issuer: "https://writ.test", Audience: "https://writ.test/v1", Subject: "i|s",
		Expiry: time.Now().Add(time.Hour).Unix(), CNF: cnf{JKT: "k"}, Group: "g", Operator: broker.Operator{Issuer: "i", Subject: "s"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, "", "a.b.c", good[:len(good)-3], strings.Replace(good, ".", "..", 1), "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := s.verifyToken(raw)
		if err == nil {
			if raw != good || c.Operator.Subject != "s" {
				t.Fatalf("accepted %q", raw)
			}
			return
		}
		var ae *authError
		if !errors.As(err, &ae) || ae.code != errInvalidToken {
			t.Fatalf("%q: %v", raw, err)
		}
	})
}

type noVerifier struct{}

func (noVerifier) VerifyIDToken(context.Context, string) (*operator.Session, error) {
	return nil, errors.New("no provider in this test")
}
