package operator

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
)

// openBrowser starts the system browser on url (RFC 8252 §8.12: the system
// browser, not an embedded one) when there is one to start. Over SSH, without
// a display, it does nothing: a text-mode browser launched by xdg-open would
// take over the terminal the console draws on.
func openBrowser(url string) error {
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler"}
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no graphical session (DISPLAY and WAYLAND_DISPLAY are unset)")
		}
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, append(args, url)...)
	// Stdin, Stdout and Stderr stay nil (the null device): nothing of the
	// opener reaches the console's terminal.
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it; the opener exits on its own
	return nil
}
