package httpapi_test

import (
	"reflect"
	"testing"
)

// TestMetadataListsProtectedResources: writ's discovery document names the
// resources it issues tokens for (RFC 9728 §4 protected_resources), so a
// client that found a resource's metadata can check writ serves it.
func TestMetadataListsProtectedResources(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		m := e.get(path)
		got, _ := m.Body["protected_resources"].([]any)
		if want := []any{gitURI, billingURI}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: protected_resources %v, want %v", path, got, want)
		}
	}
}
