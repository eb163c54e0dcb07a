package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/writhq/writ/broker/load"
)

// benchChild is a server the bench runs as a child process: `writ serve`
// or oidc-provider, on a free loopback port.
type benchChild struct {
	name    string
	cmd     *exec.Cmd
	issuer  string
	health  string // the URL that answers 200 once it serves
	logPath string
	started time.Time
	// ready is how long it took from exec to the first 200 of health.
	ready   time.Duration
	exited  chan struct{} // closed when the child has been waited for
	waitErr error
	stopped bool
}

// startChild runs c (its output to logPath), waits until health answers
// 200 and returns the child; on failure the child is stopped and the end
// of its log is in the error.
func startChild(ctx context.Context, name string, c *exec.Cmd, issuer, health, logPath string) (*benchChild, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	stopWithParent(c)
	c.Stdout, c.Stderr = logFile, logFile
	s := &benchChild{name: name, cmd: c, issuer: issuer, health: health, logPath: logPath, exited: make(chan struct{})}
	s.started = time.Now()
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		s.waitErr = c.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx); err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("%w%s", err, s.logTail())
	}
	return s, nil
}

// startServeChild writes setup's configuration and policy into dir and
// starts this executable's `serve` on a free loopback port over db.
func startServeChild(ctx context.Context, dir, db string, setup *load.Setup, extra ...string) (*benchChild, error) {
	cfg, err := setup.ConfigYAML()
	if err != nil {
		return nil, err
	}
	cfgPath, policyPath := filepath.Join(dir, load.ConfigFile), filepath.Join(dir, load.PolicyFile)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", cfgPath, err)
	}
	if err := os.WriteFile(policyPath, load.PolicyYAML(), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", policyPath, err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find writ's executable: %w", err)
	}
	c := exec.Command(exe, append([]string{"serve", "--config", cfgPath, "--policy", policyPath, "--db", db, "--listen", addr}, extra...)...)
	c.Env = childEnv()
	issuer := "http://" + addr
	return startChild(ctx, "writ serve", c, issuer, issuer+"/healthz", filepath.Join(dir, "serve-"+filepath.Base(db)+".log"))
}

// childEnv is this process's environment without WRIT_* variables, which
// would override the flags the child is given nothing for.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WRIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeLoopbackAddr picks a port the kernel says is free on 127.0.0.1.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// childReadyTimeout bounds a start: a store of a million audit entries or
// a configuration of thousands of agents takes a moment.
const childReadyTimeout = 60 * time.Second

// waitHealthy polls the health URL every 5 ms until it answers 200.
func (s *benchChild) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := s.started.Add(childReadyTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.health, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.ready = time.Since(s.started)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("%s exited before it was healthy: %v", s.name, s.waitErr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not healthy after %s", s.name, childReadyTimeout)
		}
	}
}

// pid is the child's process id.
func (s *benchChild) pid() int { return s.cmd.Process.Pid }

// stop asks the child to shut down (SIGINT, as Ctrl-C would), kills it
// if it has not within 15 s, and waits for it. It may be called again.
func (s *benchChild) stop() error {
	if s.stopped {
		<-s.exited
		return nil
	}
	s.stopped = true
	select {
	case <-s.exited:
		return s.waitErr
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New(s.name + " did not stop within 15 s of SIGINT; killed")
	}
}

// logTail is the end of the child's log, to say why something failed.
func (s *benchChild) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + s.name + "'s log ends:\n" + string(bytes.TrimRight(b, "\n"))
}
