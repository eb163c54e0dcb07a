package tui

import (
	"github.com/writhq/writ/broker"
)

// storeHealthReader is a Backend that says whether its store can write:
// *broker.Service (the embedded console) and the operator API client (a
// remote console) do. A backend that does not is taken as writable.
type storeHealthReader interface {
	StoreHealth() broker.StoreHealth
}

// storeHealthOf asks b whether its store can write, without I/O: the
// Service keeps it in memory, the client from its last status call and
// the event stream.
func storeHealthOf(b Backend) broker.StoreHealth {
	if r, ok := b.(storeHealthReader); ok {
		return r.StoreHealth()
	}
	return broker.StoreHealth{Writable: true}
}

// storeBannerText is the banner while the store cannot write: since when
// and why, and what that means for the operator; "" while it can. It is
// shown until a commit (an action, or the broker's own write probe) lands.
func storeBannerText(h broker.StoreHealth) string {
	if h.Writable {
		return ""
	}
	s := " STORE CANNOT WRITE"
	if !h.Since.IsZero() {
		s += " since " + h.Since.Local().Format("15:04:05")
	}
	if h.Error != "" {
		s += ": " + Neutralise(h.Error)
	}
	return s + " · approvals, tokens and revocations are refused until it can"
}

// setStoreHealth shows or clears the store banner; it reports whether the
// banner changed, so the caller can lay the screen out again.
func (d *data) setStoreHealth(h broker.StoreHealth) bool {
	text := storeBannerText(h)
	changed := text != d.storeBanner
	d.storeBanner = text
	return changed
}
