package signin

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker/operator"
)

// RefreshedMsg carries a session renewed with its refresh token.
type RefreshedMsg struct{ Session *operator.Session }

// RefreshFailedMsg says a refresh did not work. With an
// *operator.UnreachableError the old session stays good until its expiry;
// anything else means it has ended and a key should sign in again.
type RefreshFailedMsg struct{ Err error }

// refreshTimeout bounds one refresh, so a hung provider cannot hold it.
const refreshTimeout = 30 * time.Second

// Refresh renews s as a command, for a console that schedules refreshes from
// its own tick (at s.RefreshAt()). A console that prefers a goroutine uses
// operator.Client.KeepAlive instead.
func Refresh(c *operator.Client, s *operator.Session) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		ns, err := c.Refresh(ctx, s)
		if err != nil {
			return RefreshFailedMsg{Err: err}
		}
		return RefreshedMsg{Session: ns}
	}
}
