package guard

import (
	"testing"
	"time"
)

func TestMaxAge(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                                jwksDefaultTTL,
		"public, max-age=600":             10 * time.Minute,
		"max-age=\"60\", must-revalidate": time.Minute,
		"no-store":                        0,
		"no-cache, max-age=600":           0,
		"max-age=junk":                    jwksDefaultTTL,
		"s-maxage=120":                    2 * time.Minute,
	} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", cc, got, want)
		}
	}
}

func TestParseJWKSSkipsWhatItCannotUse(t *testing.T) {
	body := `{"keys":[
	 {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ok","alg":"EdDSA","use":"sig"},
	 {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"enc","use":"enc"},
	 {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	 {"kty":"PQ","kid":"future"},
	 {"kty":"oct","k":"c2VjcmV0","kid":"mac"}
	]}`
	keys, err := parseJWKS([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys["ok"] == nil {
		t.Errorf("keys = %v, want only \"ok\"", keys)
	}
	if _, err := parseJWKS([]byte(`[]`)); err == nil {
		t.Error("a JSON array was taken for a JWK set")
	}
}
