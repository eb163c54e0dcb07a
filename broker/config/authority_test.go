package config

import (
	"strings"
	"testing"
)

// TestResourcesAreExact: nested or overlapping resources are refused, naming
// both (issue 9, reproduction 4), and owners must be something writ can
// compare with a signed-in operator.
func TestResourcesAreExact(t *testing.T) {
	const key = `{"kty":"OKP","crv":"Ed25519","x":"qoIJTi2LpL4P7W1htqjjBq4drijQBhIJGyOq72fVPv0"}`
	res := func(uri string) string {
		return "  - uri: " + uri + "\n    scopes:\n      - {name: read, risk: low, description: Read}\n"
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"nested", "resources:\n" + res("http://h:1") + res("http://h:1/vault"), "resources[1].uri: resource http://h:1/vault overlaps resources[0] http://h:1"},
		{"nested, parent second", "resources:\n" + res("http://h:1/vault") + res("http://h:1/"), "overlaps resources[0] http://h:1/vault"},
		{"case", "resources:\n" + res("http://H:1/a") + res("http://h:1/a"), "overlaps"},
		{"owner nobody", "resources:\n" + res("http://h:1") + "agents:\n  - {id: a, owner: platform team, keys: [" + key + "]}\n", "agents[0].owner"},
		{"owner subject without issuer", "resources:\n" + res("http://h:1") + "agents:\n  - {id: a, owner: '|plat', keys: [" + key + "]}\n", "issuer|subject"},
	} {
		_, err := Parse("bad.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	for _, ok := range []string{
		"resources:\n" + res("http://h:1/a") + res("http://h:1/ab") + res("http://h:2"),
		"resources:\n" + res("http://h:1") + "agents:\n  - {id: a, owner: plat@example.com, keys: [" + key + "]}\n  - {id: b, owner: 'https://idp.example|u-1', keys: [" + key + "]}\n",
	} {
		if _, err := Parse("ok.yaml", []byte(ok)); err != nil {
			t.Errorf("refused a valid configuration: %v\n%s", err, ok)
		}
	}
}
