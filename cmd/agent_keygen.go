package cmd

import "fmt"

// keygenBlock is what `writ agent keygen` prints for the configuration:
// it loads as it is (the agent may ask for nothing until a ceiling entry
// names a declared resource), with the ceiling to fill in as a comment.
func keygenBlock(id, publicJWK string) string {
	return fmt.Sprintf(`agents:
  - id: %s
    keys:
      - %s
    # What it may ever ask for: one entry per resource declared under
    # resources:, for example
    #   - resource: https://git.example.com
    #     scopes: [contents:read]
    ceiling: []
`, id, publicJWK)
}
