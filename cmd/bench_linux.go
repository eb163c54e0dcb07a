package cmd

import (
	"os/exec"
	"syscall"
)

// stopWithParent has the kernel stop the child if writ bench dies without
// stopping it (SIGKILL), so no server is left running.
func stopWithParent(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
