package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/wire"
)

// Fleet runs the simulated agents.
type Fleet struct {
	Setup  *Setup
	Issuer string // writ's public URL
	// Pace is the mean pause between an agent's tasks (default 20s).
	Pace time.Duration
	// Step is the mean pause between an agent's calls within a task (default 4s).
	Step time.Duration
	// HTTPClient talks to writ and the resource server.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Run starts every agent and returns when ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	if f.Pace == 0 {
		f.Pace = 20 * time.Second
	}
	if f.Step == 0 {
		f.Step = 4 * time.Second
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	i := 0
	for _, spec := range agentSpecs {
		key := f.Setup.Keys[spec.id]
		client, err := agent.New(ctx, f.Issuer, key, agent.Options{HTTPClient: f.HTTPClient, Logger: f.Logger})
		if err != nil {
			return fmt.Errorf("demo agent %s: %w", spec.id, err)
		}
		a := &simAgent{id: spec.id, client: client, fleet: f, log: f.Logger.With("agent", spec.id),
			rnd: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))}
		start := time.Duration(i) * 1500 * time.Millisecond // stagger the first requests
		i++
		wg.Go(func() { a.run(ctx, start) })
	}
	wg.Wait()
	return nil
}

// simAgent is one simulated agent.
type simAgent struct {
	id     string
	client *agent.Client
	fleet  *Fleet
	log    *slog.Logger
	rnd    *rand.Rand
}

func (a *simAgent) run(ctx context.Context, first time.Duration) {
	if !sleep(ctx, first) {
		return
	}
	for n := 0; ctx.Err() == nil; n++ {
		if mcpAgents[a.id] {
			a.performMCP(ctx)
			if !sleep(ctx, a.jitter(a.fleet.Pace)) {
				return
			}
			continue
		}
		list := scripts[a.id]
		s := list[n%len(list)]
		a.perform(ctx, &s, nil)
		if !sleep(ctx, a.jitter(a.fleet.Pace)) {
			return
		}
	}
}

// jitter returns d scaled by a random factor in [0.5, 1.5).
func (a *simAgent) jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + a.rnd.Float64()))
}

// perform asks for a task, waits for the decision and, if granted, does the work.
func (a *simAgent) perform(ctx context.Context, s *script, parent *agent.Task) {
	tr := agent.TaskRequest{Intent: s.intent, Scopes: s.scopes, Resource: a.fleet.Setup.Resources[s.res], TTL: s.ttl}
	for _, d := range s.details(tr.Resource) {
		tr.Details = append(tr.Details, wire.AuthorizationDetail(d))
	}
	var pending *agent.Pending
	var err error
	for range max(1, s.burst) {
		var p *agent.Pending
		if parent != nil {
			p, err = parent.FollowOn(ctx, tr)
		} else {
			p, err = a.client.Request(ctx, tr)
		}
		if err != nil {
			break
		}
		if pending == nil {
			pending = p
		}
	}
	if pending == nil {
		a.log.Info("request refused", "intent", s.intent, "err", err)
		return
	}
	task, err := a.client.Wait(ctx, pending, nil)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Info("task not granted", "intent", s.intent, "err", err)
		}
		return
	}
	a.log.Info("task granted", "intent", s.intent, "scopes", strings.Join(task.Scopes, " "))
	defer func() {
		if err := task.Done(context.WithoutCancel(ctx)); err != nil {
			a.log.Info("report task done", "err", err)
		}
	}()
	var followOns sync.WaitGroup
	defer followOns.Wait()
	for i, c := range s.calls {
		if !sleep(ctx, a.jitter(a.fleet.Step)) {
			return
		}
		status, err := a.call(ctx, task, tr.Resource, c)
		if err != nil || status == http.StatusUnauthorized {
			a.log.Info("call refused; stopping the task", "path", c.path, "status", status, "err", err)
			return
		}
		if i == 0 && s.followOn != nil {
			// The follow-on is asked for while the task goes on.
			followOns.Go(func() { a.perform(ctx, s.followOn, task) })
		}
	}
}

// call makes one request to the resource server with the task's token.
func (a *simAgent) call(ctx context.Context, task *agent.Task, resource string, c call) (int, error) {
	req, err := http.NewRequestWithContext(ctx, c.method, resource+c.path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := task.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
