// Command writ is a terminal approval console with an embedded token issuer
// for AI agents.
package main

import "github.com/writhq/writ/cmd"

func main() { cmd.Execute() }
