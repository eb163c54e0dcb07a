package broker_test

import (
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
)

const apiRes = "https://api.example/repos/acme"

func TestCheckLocation(t *testing.T) {
	ok := []struct{ loc, want string }{
		{"https://api.example/repos/acme", "https://api.example/repos/acme"},
		{"https://api.example/repos/acme/", "https://api.example/repos/acme"},
		{"https://api.example/repos/acme/issues/7", "https://api.example/repos/acme/issues/7"},
		{"HTTPS://API.Example:443/repos/acme/x", "https://api.example/repos/acme/x"},
		{"https://api.example/repos/acme/a%7eb", "https://api.example/repos/acme/a%7Eb"},
		{"https://api.example/repos/acme/a-b_c~d...e", "https://api.example/repos/acme/a-b_c~d...e"},
	}
	for _, tc := range ok {
		got, err := broker.CheckLocation(tc.loc, apiRes)
		if err != nil || got != tc.want {
			t.Errorf("CheckLocation(%q) = %q, %v; want %q", tc.loc, got, err, tc.want)
		}
	}
	// The locations of issue 10, item 7, and their relatives: each refused
	// with a reason that names the problem.
	refused := []struct{ loc, why string }{
		{"https://api.example/repos/acme/..;/admin", "path parameter"},
		{"https://api.example/repos/acme;jsessionid=1/x", "path parameter"},
		{"https://api.example/repos/acme//other.example/x", "empty path segment"},
		{"https://api.example//repos/acme", "empty path segment"},
		{"https://api.example/repos/acme/%2e%2e/admin", "encoded"},
		{"https://api.example/repos/acme/%2E%2E/admin", "encoded"},
		{"https://api.example/repos/acme/%252e%252e/admin", "encoded"},
		{"https://api.example/repos/acme/a%2fb", "encoded"},
		{"https://api.example/repos/acme/a%5cb", "encoded"},
		{"https://api.example/repos/acme/a%00b", "encoded"},
		{"https://api.example/repos/acme/a%c3%a9", "encoded"},
		{"https://api.example/repos/acme/a%2", "malformed percent"},
		{"https://api.example/repos/acme\\..\\admin", "backslash"},
		{"https://user:pw@api.example/repos/acme", "userinfo"},
		{"https://api.example@evil.example/repos/acme", "userinfo"},
		{"https://api.example/repos/acme/\uff0e\uff0e/admin", "ASCII"},
		{"https://api\uff0eexample/repos/acme", "ASCII"},
		{"https://api.example/repos/acme/../admin", "dot segment"},
		{"https://api.example/repos/acme/./x", "dot segment"},
		{"https://api.example/repos/acme?x=1", "query"},
		{"https://api.example/repos/acme#x", "fragment"},
		{"https://api.example/repos/acme/a b", "space"},
		{"https://api.example/repos/acme-evil", "not within"},
		{"https://api.example/repos", "not within"},
		{"https://evil.example/repos/acme", "not at"},
		{"http://api.example/repos/acme", "not at"},
		{"https://api.example:8443/repos/acme", "not at"},
		{"ftp://api.example/repos/acme", "absolute http"},
		{"/repos/acme", "absolute http"},
		{"https:///repos/acme", "no host"},
		{"https://api.example:99999/repos/acme", "port"},
		{"https://[::1/repos/acme", "IPv6"},
		{"https://" + strings.Repeat("a", broker.MaxLocationLength), "longer than"},
	}
	for _, tc := range refused {
		got, err := broker.CheckLocation(tc.loc, apiRes)
		if err == nil {
			t.Errorf("CheckLocation(%q) = %q, want refused (%s)", tc.loc, got, tc.why)
			continue
		}
		if broker.ErrorCode(err) != broker.EINVALID || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CheckLocation(%q): %v, want EINVALID mentioning %q", tc.loc, err, tc.why)
		}
	}
}

// FuzzCheckLocation: whatever CheckLocation accepts is in normal form,
// free of every ambiguous construct, and containment is transitive: a
// location a guard accepts within a granted location that writ accepted
// within the resource is within the resource too.
func FuzzCheckLocation(f *testing.F) {
	for _, s := range []string{"https://api.example/repos/acme/x", "https://api.example/repos/acme/..;/admin",
		"https://api.example/repos/acme/%252e", "HTTPS://API.EXAMPLE:443/repos/acme/", "https://api.example/repos/acme//x",
		"https://a@api.example/repos/acme", "https://api.example/repos/acme/\uff0e"} {
		f.Add(s, "https://api.example/repos/acme/x")
	}
	f.Fuzz(func(t *testing.T, loc, granted string) {
		norm, err := broker.CheckLocation(loc, granted)
		if err != nil {
			return
		}
		for _, bad := range []string{";", "\\", "//", "/./", "/../", "@", "?", "#", "%2e", "%2E", "%2f", "%2F", "%25"} {
			if strings.Contains(strings.TrimPrefix(strings.TrimPrefix(norm, "https://"), "http://"), bad) {
				t.Fatalf("accepted %q as %q, which contains %q", loc, norm, bad)
			}
		}
		again, err := broker.CheckLocation(norm, granted)
		if err != nil || again != norm {
			t.Fatalf("normal form %q of %q does not check again: %q, %v", norm, loc, again, err)
		}
		if g, err := broker.CheckLocation(granted, apiRes); err == nil {
			if _, err := broker.CheckLocation(loc, g); err != nil {
				t.Fatalf("%q within %q but not within its normal form %q: %v", loc, granted, g, err)
			}
			if _, err := broker.CheckLocation(loc, apiRes); err != nil {
				t.Fatalf("%q within granted %q within %q, but not within the resource: %v", loc, granted, apiRes, err)
			}
		}
	})
}
