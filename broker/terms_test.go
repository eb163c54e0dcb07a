package broker

import "testing"

func TestResourceWithin(t *testing.T) {
	tests := []struct {
		r, w string
		want bool
	}{
		{"https://git.example", "https://git.example", true},
		{"https://git.example/repos/acme", "https://git.example", true},
		{"https://git.example/repos/acme/web", "https://git.example/repos/acme", true},
		{"https://git.example/repos/acme/web", "https://git.example/repos/acme/", true},
		{"https://git.example/repos/acmecorp", "https://git.example/repos/acme", false},
		{"https://git.example/repos/acme/../../admin", "https://git.example/repos/acme", false},
		{"https://git.example/repos/acme/%2e%2e/%2e%2e/admin", "https://git.example/repos/acme", false},
		{"https://git.example/repos/acme/./web", "https://git.example/repos/acme", false},
		{"https://git.example/repos/acme/web?x=1", "https://git.example/repos/acme", false},
		{"https://git.example/repos/acme/web#f", "https://git.example/repos/acme", false},
		{"http://git.example/repos/acme/web", "https://git.example/repos/acme", false},
		{"https://evil.example/repos/acme/web", "https://git.example/repos/acme", false},
		{"https://git.example.evil/x", "https://git.example", false},
	}
	for _, tt := range tests {
		if got := ResourceWithin(tt.r, tt.w); got != tt.want {
			t.Errorf("ResourceWithin(%q, %q) = %v, want %v", tt.r, tt.w, got, tt.want)
		}
	}
}
