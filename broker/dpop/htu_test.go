package dpop

import "testing"

func TestAppendHTU(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://as.example.com/token", "https://as.example.com/token"},
		{"HTTPS://AS.Example.COM/token", "https://as.example.com/token"},
		{"https://as.example.com:443/token", "https://as.example.com/token"},
		{"https://as.example.com:/token", "https://as.example.com/token"},
		{"https://as.example.com:0443/token", "https://as.example.com/token"},
		{"http://as.example.com:80/token", "http://as.example.com/token"},
		{"http://as.example.com:443/token", "http://as.example.com:443/token"},
		{"https://as.example.com:80/token", "https://as.example.com:80/token"},
		{"https://as.example.com", "https://as.example.com/"},
		{"https://as.example.com?x#y", "https://as.example.com/"},
		{"https://as.example.com/a?b=c#d", "https://as.example.com/a"},
		{"https://as.example.com/a#d?b", "https://as.example.com/a"},
		{"https://as.example.com/%7euser/%2fx%3A", "https://as.example.com/~user/%2Fx%3A"},
		{"https://as.example.com/%41%42c", "https://as.example.com/ABc"},
		{"https://%41s.example.com/", "https://as.example.com/"},
		{"https://as.example.com/a/b/../c/./d", "https://as.example.com/a/c/d"},
		{"https://as.example.com/../a", "https://as.example.com/a"},
		{"https://as.example.com/a/..", "https://as.example.com/"},
		{"https://as.example.com/a/.", "https://as.example.com/a/"},
		{"https://as.example.com/%2E%2E/a", "https://as.example.com/a"},
		{"https://as.example.com/.well-known/x", "https://as.example.com/.well-known/x"},
		{"https://as.example.com/a/...", "https://as.example.com/a/..."},
		{"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"https://[::1]:8443/x", "https://[::1]:8443/x"},
		{"HtTp://127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"https://as.example.com/A", "https://as.example.com/A"},
	} {
		got, err := appendHTU(nil, c.in)
		if err != nil || string(got) != c.want {
			t.Errorf("appendHTU(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "/token", "as.example.com/token", "1http://x/", "ftp://x/", "https:/x", "https:x",
		"https:///x", "https://:443/x", "https://u:p@x/", "https://x:port/", "https://x:65536/",
		"https://x:1:2/", "https://[::1/", "https://[::1]x/", "https://x/%zz", "https://x/%4",
		"https://x/a b", "https://x/\x00", "https://x/\xff", "https://ex ample/",
	} {
		if got, err := appendHTU(nil, in); err == nil {
			t.Errorf("appendHTU(%q) = %q, want an error", in, got)
		}
	}
}
