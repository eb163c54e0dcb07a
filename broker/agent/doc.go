// Package agent is the Go SDK for agents that ask writ for task-scoped
// tokens. It speaks only the standards writ's HTTP API follows: OAuth
// metadata (RFC 8414), CIBA poll mode for the request and the wait,
// RFC 9396 authorization details, private_key_jwt client authentication
// (RFC 7523), DPoP-bound tokens (RFC 9449) and RFC 7009 revocation to say
// a task is done.
//
//	key, _ := agent.LoadKey("release-bot.key.json")
//	c, _ := agent.New(ctx, "https://writ.example", key, agent.Options{})
//	task, err := c.RequestAndWait(ctx, agent.TaskRequest{
//		Intent:   "Open a PR fixing CVE-2026-1234",
//		Scopes:   []string{"contents:write", "pulls:write"},
//		Resource: "https://git.acme.example",
//		TTL:      15 * time.Minute,
//	}, func(p agent.Progress) { log.Printf("waiting for approval (%d polls)", p.Polls) })
//	if errors.Is(err, agent.ErrDenied) { ... } // the reason is in err
//	resp, _ := task.Do(req)                     // DPoP-signed, Authorization: DPoP …
//	_ = task.Done(ctx)                          // the grant completes
//
// Each task's token is bound to a fresh DPoP key held in memory (or to
// Options.DPoPKey), so the token is useless to anyone who copies it.
package agent
