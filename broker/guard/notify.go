package guard

// RevocationsChanged returns a number that moves on whenever the
// revocation feed changes what the guard refuses or narrows (a grant,
// token, agent or everything revoked; a grant narrowed), and a channel
// closed when it next moves on.
//
// A server that holds long-lived sessions (a stream, a WebSocket, an MCP
// session) checked once at their start can wait on the channel and check
// them again then, instead of polling: a revocation ends them as soon as
// the guard learns of it.
//
//	_, changed := g.RevocationsChanged()
//	for {
//		select {
//		case <-changed:
//			if _, err := g.Check(ctx, r); err != nil { /* end the session */ }
//			_, changed = g.RevocationsChanged()
//		case <-ctx.Done():
//			return
//		}
//	}
//
// The number only compares for equality: a different one means something
// changed since it was read.
func (g *Guard) RevocationsChanged() (gen uint64, changed <-chan struct{}) {
	return g.deny.watch()
}
