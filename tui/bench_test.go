package tui

import (
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/themes"
)

// largeConsole is a console holding 10,000 pending requests and 100,000
// grants, the size the performance budget names.
func largeConsole(tb testing.TB, w, h int) *Model {
	tb.Helper()
	f := newFixture()
	agents := []string{"release-bot", "support-bot", "reader-bot"}
	f.pending = make([]*broker.TaskRequest, 0, 10_000)
	for i := range 10_000 {
		r := req(fmt.Sprintf("req-%06d", i), agents[i%3], fmt.Sprintf("task %d: open a pull request for ticket %d", i, i*7),
			"https://api.github.com", time.Duration(10_000-i)*time.Millisecond, 15*time.Minute, "contents:read", "pull_requests:write")
		f.pending = append(f.pending, r)
	}
	f.grants = make([]*broker.Grant, 0, 100_000)
	for i := range 100_000 {
		f.grants = append(f.grants, &broker.Grant{ID: fmt.Sprintf("grant-%06d", i), RequestID: fmt.Sprintf("r-%d", i),
			AgentID: agents[i%3], Intent: fmt.Sprintf("task %d", i), State: broker.GrantActive, Epoch: 1, AgentEpoch: 1,
			Terms:     broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com", TTL: time.Hour},
			CreatedAt: fixedNow.Add(-time.Duration(100_000-i) * time.Millisecond), ExpiresAt: fixedNow.Add(time.Hour),
			TokenJTI: "j", JKT: "k", Uses: int64(i % 50), LastUse: fixedNow.Add(-time.Second)})
	}
	b := f.backend()
	m := New(b, Options{Now: func() time.Time { return fixedNow }, Theme: themes.Default(true),
		Session: &Session{Operator: priya, Expires: fixedNow.Add(time.Hour)}})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.Update(loadSnapshot(tb.Context(), b, time.Hour)())
	return m
}

// benchKeys measures one keypress: Update then View, as a frame costs.
func benchKeys(b *testing.B, page string, keys ...string) {
	for _, size := range [][2]int{{80, 24}, {200, 60}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			m := largeConsole(b, size[0], size[1])
			m.Update(press(page))
			msgs := make([]tea.KeyPressMsg, len(keys))
			for i, k := range keys {
				msgs[i] = press(k)
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				m.Update(msgs[i%len(msgs)])
				_ = m.View()
				i++
			}
		})
	}
}

// BenchmarkKeypressPending moves through 10,000 pending requests.
func BenchmarkKeypressPending(b *testing.B) { benchKeys(b, "1", "down", "down", "pgdown", "up") }

// BenchmarkKeypressGrants moves through 100,000 grants.
func BenchmarkKeypressGrants(b *testing.B) { benchKeys(b, "2", "down", "down", "pgdown", "up") }

// BenchmarkTick is the once-a-second countdown redraw over 100,000 grants.
func BenchmarkTick(b *testing.B) {
	m := largeConsole(b, 200, 60)
	m.Update(press("2"))
	b.ReportAllocs()
	for b.Loop() {
		m.Update(tickMsg(fixedNow))
		_ = m.View()
	}
}

// BenchmarkArrival is one live request arriving into a queue of 10,000.
func BenchmarkArrival(b *testing.B) {
	m := largeConsole(b, 200, 60)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := req(fmt.Sprintf("live-%d", i), "reader-bot", fmt.Sprintf("read page %d", i), "https://api.github.com", 0, 5*time.Minute, "contents:read")
		m.onEvents([]broker.Event{{Kind: broker.EventRequestSubmitted, Request: r}})
		_ = m.View()
		i++
	}
}

// BenchmarkFilterKeystroke types into the filter over 10,000 requests.
func BenchmarkFilterKeystroke(b *testing.B) {
	m := largeConsole(b, 200, 60)
	m.Update(press("/"))
	b.ReportAllocs()
	for b.Loop() {
		m.Update(press("x"))
		_ = m.View()
		m.Update(press("backspace"))
		_ = m.View()
	}
}
