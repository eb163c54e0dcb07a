//go:build !linux

package cmd

import "os/exec"

// stopWithParent does nothing where the kernel cannot stop a child with
// its parent; writ bench still stops its server on every exit it sees.
func stopWithParent(*exec.Cmd) {}
