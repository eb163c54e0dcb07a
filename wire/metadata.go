package wire

// ProtectedResourcePath is where a resource server publishes its RFC 9728
// metadata, below its own URL.
const ProtectedResourcePath = "/.well-known/oauth-protected-resource"

// ProtectedResourceMetadata is an RFC 9728 §2 protected-resource metadata
// document, with writ's authorization_details_types_supported (RFC 9396 §10).
type ProtectedResourceMetadata struct {
	Resource                           string   `json:"resource"`
	AuthorizationServers               []string `json:"authorization_servers,omitempty"`
	ScopesSupported                    []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported             []string `json:"bearer_methods_supported,omitempty"`
	ResourceName                       string   `json:"resource_name,omitempty"`
	DPoPSigningAlgValuesSupported      []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired      bool     `json:"dpop_bound_access_tokens_required,omitempty"`
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported,omitempty"`
}

// ProtectedResourceMetadataURL is where RFC 9728 §3.1 puts the metadata of
// resource: the well-known path inserted between its host and its path
// (https://mcp.example/deploy → https://mcp.example/.well-known/oauth-protected-resource/deploy).
func ProtectedResourceMetadataURL(resource string) string {
	i := 0
	if j := indexAfterScheme(resource); j >= 0 {
		i = j
	}
	host, path := resource, ""
	for k := i; k < len(resource); k++ {
		if resource[k] == '/' || resource[k] == '?' || resource[k] == '#' {
			host, path = resource[:k], resource[k:]
			break
		}
	}
	if path == "/" {
		path = ""
	}
	return host + ProtectedResourcePath + path
}

func indexAfterScheme(s string) int {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == ':' && s[i+1] == '/' && s[i+2] == '/' {
			return i + 3
		}
	}
	return -1
}
