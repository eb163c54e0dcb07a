package ssfwire_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/wire/ssfwire"
)

// TestSpecExamples parses every example SET of RFC 8417, SSF 1.0 and CAEP
// 1.0 as a golden input.
func TestSpecExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/spec/*.json")
	if err != nil || len(files) < 15 {
		t.Fatalf("spec examples: %v (%d files)", err, len(files))
	}
	type want struct {
		typ, subFormat, iss string
		aud                 []string
		profileOK           bool
		check               func(t *testing.T, s *ssfwire.SET)
	}
	wants := map[string]want{
		"rfc8417-figure1-scim-create.json": {typ: "urn:ietf:params:scim:event:create", iss: "https://scim.example.com",
			aud: []string{"https://scim.example.com/Feeds/98d52461fa5bbc879593b7754", "https://scim.example.com/Feeds/5d7604516b1d08641d7676ee7"}},
		"rfc8417-figure2-logout.json": {typ: "http://schemas.openid.net/event/backchannel-logout", iss: "https://server.example.com",
			aud: []string{"s6BhdRkqt3"}, check: func(t *testing.T, s *ssfwire.SET) {
				if !s.HasSub {
					t.Error("the logout example has a sub, which the SSF profile refuses")
				}
			}},
		"rfc8417-figure3-risc.json": {typ: "https://schemas.openid.net/secevent/risc/event-type/account-disabled", subFormat: "iss-sub",
			iss: "https://idp.example.com/", aud: []string{"636C69656E745F6964"}, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Subject.Sub != "7375626A656374" {
					t.Errorf("legacy subject sub = %q", s.Subject.Sub)
				}
			}},
		"ssf-array-aud-verification.json": {typ: ssfwire.EventVerification, subFormat: "opaque", iss: "https://transmitter.example.com",
			aud: []string{"receiver.example.com/web", "receiver.example.com/mobile"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Event.State != "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo=" || s.TXN != "8675309" {
					t.Errorf("state %q txn %q", s.Event.State, s.TXN)
				}
			}},
		"ssf-simple-subject.json": {typ: "https://schemas.openid.net/secevent/risc/event-type/account-enabled", subFormat: "email",
			iss: "https://idp.example.com/", aud: []string{"636C69656E745F6964"}, profileOK: true},
		"ssf-risc-phone-subject.json": {typ: "https://schemas.openid.net/secevent/risc/event-type/account-disabled", subFormat: "phone_number",
			iss: "https://idp.example.com/", aud: []string{"636C69656E745F6964"}, profileOK: true},
		"ssf-caep-properties.json": {typ: ssfwire.EventTokenClaimsChange, subFormat: "email", iss: "https://idp.example.com/",
			aud: []string{"636C69656E745F6964"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if string(s.Event.Claims["token"]) != `"some-token-value"` {
					t.Errorf("claims = %s", s.Event.Claims)
				}
			}},
		"ssf-complex-subject.json": {typ: ssfwire.EventSessionRevoked, subFormat: "complex", iss: "https://idp.example.com/",
			aud: []string{"636C69656E745F6964"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Subject.User == nil || s.Subject.User.Sub != "jane.smith@example.com" || s.Subject.Device == nil {
					t.Errorf("complex subject = %+v", s.Subject)
				}
				if s.Event.InitiatingEntity != "policy" || s.Event.ReasonAdmin["en"] != "Policy Violation: C076E82F" ||
					s.Event.ReasonUser["es"] != "Violación de velocidad en tierra." || s.Event.Timestamp.Unix() != 1600975810 {
					t.Errorf("event = %+v", s.Event)
				}
			}},
		"ssf-property-member.json": {typ: ssfwire.EventTokenClaimsChange, subFormat: "email", iss: "https://sp.example2.com/",
			aud: []string{"636C69656E745F6964"}, profileOK: true},
		"ssf-proprietary-subject.json": {typ: ssfwire.EventTokenClaimsChange, subFormat: "catalog_item", iss: "https://myservice.example3.com/",
			aud: []string{"636C69656E745F6324"}, profileOK: true},
		"ssf-verification.json": {typ: ssfwire.EventVerification, subFormat: "opaque", iss: "https://transmitter.example.com",
			aud: []string{"receiver.example.com"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Subject.ID != "f67e39a0a4d34d56b3aa1bc4cff0069f" {
					t.Errorf("stream subject = %q", s.Subject.ID)
				}
			}},
		"ssf-stream-updated.json": {typ: ssfwire.EventStreamUpdated, subFormat: "opaque", iss: "https://transmitter.example.com",
			aud: []string{"receiver.example.com"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Event.Status != "paused" || s.Event.Reason != "Internal error" {
					t.Errorf("status %q reason %q", s.Event.Status, s.Event.Reason)
				}
			}},
		"caep-session-revoked-simple.json": {typ: ssfwire.EventSessionRevoked, subFormat: "opaque", iss: "https://idp.example.com/123456789/",
			aud: []string{"https://sp.example.com/caep"}, profileOK: true},
		"caep-session-revoked-complex.json": {typ: ssfwire.EventSessionRevoked, subFormat: "complex", iss: "https://idp.example.com/123456789/",
			aud: []string{"https://sp.example.com/caep"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Subject.Session == nil || s.Subject.Session.ID != "dMTlD|1600802906337.16|16008.16" || s.Subject.Tenant.ID != "123456789" {
					t.Errorf("complex subject = %+v", s.Subject)
				}
				if s.Event.ReasonUser["es-410"] != "Intento de acceso desde varias regiones." {
					t.Errorf("reason_user = %v", s.Event.ReasonUser)
				}
			}},
		"caep-session-revoked-device.json": {typ: ssfwire.EventSessionRevoked, subFormat: "complex", iss: "https://idp.example.com/123456789/",
			aud: []string{"https://sp.example.com/caep"}, profileOK: true},
		"caep-token-claims-change.json": {typ: ssfwire.EventTokenClaimsChange, subFormat: "jwt_id", iss: "https://idp.example.com/987654321/",
			aud: []string{"https://sp.example2.net/caep"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if s.Subject.JTI != "f61t6e20zdo3px56gepu8rzlsp4c1dpc0fx7" || string(s.Event.Claims["role"]) != `"ro-admin"` {
					t.Errorf("subject %+v claims %s", s.Subject, s.Event.Claims)
				}
			}},
		"caep-token-claims-change-optional.json": {typ: ssfwire.EventTokenClaimsChange, subFormat: "jwt_id", iss: "https://idp.example.com/987654321/",
			aud: []string{"https://sp.example2.net/caep"}, profileOK: true, check: func(t *testing.T, s *ssfwire.SET) {
				if string(s.Event.Claims["trusted_network"]) != "false" || s.Event.ReasonUser["it"] == "" {
					t.Errorf("event = %+v", s.Event)
				}
			}},
		"caep-token-claims-change-saml.json": {typ: ssfwire.EventTokenClaimsChange, subFormat: "saml_assertion_id",
			iss: "https://idp.example.com/987654321/", aud: []string{"https://sp.example2.net/caep"}, profileOK: true},
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			w, ok := wants[name]
			if !ok {
				t.Fatalf("no expectations for %s", name)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ssfwire.ParseSET(b)
			if err != nil {
				t.Fatalf("ParseSET: %v", err)
			}
			if s.Type != w.typ || s.Issuer != w.iss || strings.Join(s.Audience, " ") != strings.Join(w.aud, " ") {
				t.Errorf("type %q iss %q aud %q; want %q %q %q", s.Type, s.Issuer, s.Audience, w.typ, w.iss, w.aud)
			}
			if s.JTI == "" || s.IssuedAt.IsZero() {
				t.Errorf("jti %q iat %v", s.JTI, s.IssuedAt)
			}
			if w.subFormat != "" && (s.Subject == nil || s.Subject.Format != w.subFormat) {
				t.Errorf("subject %+v, want format %q", s.Subject, w.subFormat)
			}
			if err := s.CheckProfile(); (err == nil) != w.profileOK {
				t.Errorf("CheckProfile = %v, want ok %v", err, w.profileOK)
			}
			if w.check != nil {
				w.check(t, s)
			}
		})
	}
}

func TestParseSETRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not an object":      `[1]`,
		"not json":           `{"iss":`,
		"no iss":             `{"jti":"a","iat":1,"events":{"x":{}}}`,
		"iss not a string":   `{"iss":1,"jti":"a","iat":1,"events":{"x":{}}}`,
		"no jti":             `{"iss":"i","iat":1,"events":{"x":{}}}`,
		"no iat":             `{"iss":"i","jti":"a","events":{"x":{}}}`,
		"iat a string":       `{"iss":"i","jti":"a","iat":"1","events":{"x":{}}}`,
		"negative iat":       `{"iss":"i","jti":"a","iat":-5,"events":{"x":{}}}`,
		"no events":          `{"iss":"i","jti":"a","iat":1}`,
		"empty events":       `{"iss":"i","jti":"a","iat":1,"events":{}}`,
		"event not object":   `{"iss":"i","jti":"a","iat":1,"events":{"x":"y"}}`,
		"aud a number":       `{"iss":"i","jti":"a","iat":1,"aud":5,"events":{"x":{}}}`,
		"sub_id a string":    `{"iss":"i","jti":"a","iat":1,"sub_id":"s","events":{"x":{}}}`,
		"sub_id no format":   `{"iss":"i","jti":"a","iat":1,"sub_id":{"id":"s"},"events":{"x":{}}}`,
		"nested complex":     `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"complex","user":{"format":"complex","session":{"format":"opaque","id":"x"}}},"events":{"x":{}}}`,
		"opaque id a number": `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":5},"events":{"x":{}}}`,
		"bad epoch":          `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":"x"},"events":{"x":{"https://writ.dev/ssf/epoch":-1}}}`,
		"fractional epoch":   `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":"x"},"events":{"x":{"https://writ.dev/ssf/epoch":1.5}}}`,
		"claims not object":  `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":"x"},"events":{"x":{"claims":[1]}}}`,
		"state not a string": `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":"x"},"events":{"x":{"state":{}}}}`,
		"too large":          `{"iss":"` + strings.Repeat("a", ssfwire.MaxSETSize) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := ssfwire.ParseSET([]byte(in)); err == nil {
				t.Fatalf("ParseSET accepted it: %+v", s)
			}
		})
	}
}

func TestCheckProfile(t *testing.T) {
	base := `{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":"x"},"events":{"x":{}}`
	for name, c := range map[string]struct {
		in string
		ok bool
	}{
		"conforming": {base + `}`, true},
		"with sub":   {base + `,"sub":"s"}`, false},
		"with exp":   {base + `,"exp":5}`, false},
		"two events": {`{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"opaque","id":"x"},"events":{"x":{},"y":{}}}`, false},
		"no sub_id":  {`{"iss":"i","jti":"a","iat":1,"events":{"x":{}}}`, false},
	} {
		s, err := ssfwire.ParseSET([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := s.CheckProfile(); (err == nil) != c.ok {
			t.Errorf("%s: CheckProfile = %v", name, err)
		}
	}
}

// TestEpochMember reads writ's epoch extension and event timestamps with
// fractions.
func TestEpochMember(t *testing.T) {
	in := `{"iss":"i","jti":"a","iat":1.5,"sub_id":{"format":"complex","tenant":{"format":"uri","uri":"https://writ.example"}},
	"events":{"` + ssfwire.EventSessionRevoked + `":{"https://writ.dev/ssf/epoch":7,"event_timestamp":1700000000.25}}}`
	s, err := ssfwire.ParseSET([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.Event.Epoch != 7 || s.Subject.Tenant.URI != "https://writ.example" {
		t.Errorf("epoch %d subject %+v", s.Event.Epoch, s.Subject)
	}
	if got := s.Event.Timestamp; !got.Equal(time.Unix(1700000000, 250_000_000)) {
		t.Errorf("event_timestamp = %v", got)
	}
	if s.IssuedAt.UnixMilli() != 1500 {
		t.Errorf("iat = %v", s.IssuedAt)
	}
}

func TestParsePollRequest(t *testing.T) {
	ok := map[string]string{
		"empty":          `{}`,
		"ack only":       `{"maxEvents":0,"ack":["a","b"]}`,
		"long poll":      `{"returnImmediately":false,"maxEvents":10}`,
		"set errors":     `{"setErrs":{"x":{"err":"invalid_key","description":"kid"}}}`,
		"unknown member": `{"foo":1}`,
	}
	for name, in := range ok {
		if _, err := ssfwire.ParsePollRequest([]byte(in)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]string{
		"not json":           `{`,
		"array":              `[]`,
		"negative maxEvents": `{"maxEvents":-1}`,
		"fraction maxEvents": `{"maxEvents":1.5}`,
		"ack not array":      `{"ack":"a"}`,
		"empty ack":          `{"ack":[""]}`,
		"setErr without err": `{"setErrs":{"x":{"description":"d"}}}`,
		"trailing data":      `{} {}`,
		"long jti":           `{"ack":["` + strings.Repeat("a", 300) + `"]}`,
	}
	for name, in := range bad {
		if _, err := ssfwire.ParsePollRequest([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseSET(f *testing.F) {
	files, _ := filepath.Glob("testdata/spec/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"iss":"i","jti":"a","iat":1,"sub_id":{"format":"complex","user":{"format":"iss_sub","iss":"i","sub":"s"}},"events":{"x":{"https://writ.dev/ssf/epoch":3}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ssfwire.ParseSET(b)
		if err != nil {
			return
		}
		if s.Issuer == "" || s.JTI == "" || len(s.Events) == 0 {
			t.Fatalf("accepted a SET without iss, jti or events: %q", b)
		}
		_ = s.CheckProfile()
		if _, err := json.Marshal(s.Subject); err != nil {
			t.Fatalf("subject does not encode: %v", err)
		}
	})
}

func FuzzParsePollRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"maxEvents":5,"returnImmediately":true,"ack":["a"],"setErrs":{"b":{"err":"invalid_key"}}}`, `{"maxEvents":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ssfwire.ParsePollRequest(b)
		if err != nil {
			return
		}
		if req.MaxEvents != nil && *req.MaxEvents < 0 {
			t.Fatalf("accepted negative maxEvents")
		}
		for jti, e := range req.SetErrs {
			if jti == "" || e.Err == "" {
				t.Fatalf("accepted an empty setErrs entry")
			}
		}
	})
}

// FuzzVerifySET feeds arbitrary compact SETs to the verifier.
func FuzzVerifySET(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := &jose.JSONWebKey{Key: pub, KeyID: "k1", Algorithm: string(jose.EdDSA)}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType("secevent+jwt").WithHeader("kid", "k1"))
	for _, p := range []string{
		`{"iss":"https://writ.example","jti":"a","iat":1,"aud":"rs","sub_id":{"format":"opaque","id":"s"},"events":{"x":{}}}`,
		`{"iss":"https://writ.example","jti":"a","iat":1,"sub":"x","events":{"x":{}}}`,
	} {
		jws, _ := signer.Sign([]byte(p))
		s, _ := jws.CompactSerialize()
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, compact string) {
		s, err := ssfwire.VerifySET(compact, ssfwire.VerifyOptions{Issuer: "https://writ.example", Audience: "rs",
			Key: func(kid string) (*jose.JSONWebKey, error) { return key, nil }})
		if err == nil && (s.HasSub || s.HasExp || s.Issuer != "https://writ.example" || !s.AudienceHas("rs")) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
