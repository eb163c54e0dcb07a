package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkIntrospectHandler is one introspection through the handler,
// without a network: the server's own cost per call, with -benchmem its
// allocations. The resource server authenticates with its cached client
// token, as writ bench's introspect phase does.
func BenchmarkIntrospectHandler(b *testing.B) {
	e := benchEnv(b)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = e.token("contents:read")
	}
	bearer := "Bearer " + e.clientToken(e.rs, "introspect").str("access_token")
	bodies := make([]string, len(tokens))
	for i, tok := range tokens {
		bodies[i] = url.Values{"token": {tok}}.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, "/introspect", strings.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", bearer)
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), `{"active":true`) {
			b.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkIntrospectHandlerAssertion is BenchmarkIntrospectHandler with a
// client assertion per call (signed before the timer starts), as writ
// bench's introspect-assert phase does.
func BenchmarkIntrospectHandlerAssertion(b *testing.B) {
	e := benchEnv(b)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = e.token("contents:read")
	}
	bodies := make([]string, b.N)
	assertions := e.presign(e.rs, b.N)
	for i := range bodies {
		bodies[i] = authed(<-assertions, url.Values{"token": {tokens[i%len(tokens)]}}).Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/introspect", strings.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), `{"active":true`) {
			b.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
	}
}
