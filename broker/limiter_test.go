package broker

import (
	"testing"
	"time"
)

func TestPollTracker(t *testing.T) {
	p := newPollTracker()
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	if _, soon := p.poll("r", 2*time.Second, t0); soon {
		t.Fatal("first poll too soon")
	}
	if iv, soon := p.poll("r", 2*time.Second, t0.Add(time.Second)); !soon || iv != 7*time.Second {
		t.Fatalf("fast poll: interval %s, too soon %v; want 7s, true", iv, soon)
	}
	if _, soon := p.poll("r", 2*time.Second, t0.Add(9*time.Second)); soon {
		t.Fatal("a poll after the grown interval is too soon")
	}
	p.prune(t0.Add(10 * time.Second))
	if len(p.last) != 0 {
		t.Fatalf("prune kept %d requests", len(p.last))
	}
}
