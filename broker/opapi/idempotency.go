package opapi

import (
	"container/list"
	"net/http"
	"sync"
	"time"
)

// Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a client
// that sends a mutating call again with the same key — because it lost the
// connection before the answer came — gets the first answer, and the
// action is applied once. Keys are scoped to the operator and the route,
// kept in memory for idempotencyTTL, at most idempotencyMax of them.
const (
	idempotencyTTL = 24 * time.Hour
	idempotencyMax = 10_000
	maxKeyLen      = 255
)

// answer is a recorded response.
type answer struct {
	status int
	body   []byte
	header http.Header
}

type idemEntry struct {
	key  string
	sum  [32]byte // SHA-256 of the request body
	at   time.Time
	done chan struct{} // closed once ans is set
	ans  *answer
}

// idempotency remembers the answers to keyed calls.
type idempotency struct {
	mu    sync.Mutex
	now   func() time.Time
	byKey map[string]*list.Element
	order *list.List // oldest first
}

func newIdempotency(now func() time.Time) *idempotency {
	return &idempotency{now: now, byKey: make(map[string]*list.Element), order: list.New()}
}

// begin returns the recorded entry for key, waiting for an answer still in
// flight, or starts a new one (first true) that the caller must finish.
func (m *idempotency) begin(key string, sum [32]byte) (e *idemEntry, first bool) {
	m.mu.Lock()
	now := m.now()
	for m.order.Len() > 0 {
		old := m.order.Front().Value.(*idemEntry)
		if now.Sub(old.at) < idempotencyTTL && m.order.Len() < idempotencyMax {
			break
		}
		if old.ans == nil && now.Sub(old.at) < idempotencyTTL {
			break // never evict an answer still being made
		}
		m.order.Remove(m.order.Front())
		delete(m.byKey, old.key)
	}
	if el, ok := m.byKey[key]; ok {
		e := el.Value.(*idemEntry)
		m.mu.Unlock()
		if e.sum == sum {
			<-e.done
		}
		return e, false
	}
	e = &idemEntry{key: key, sum: sum, at: now, done: make(chan struct{})}
	m.byKey[key] = m.order.PushBack(e)
	m.mu.Unlock()
	return e, true
}

// finish records the answer of a first call.
func (m *idempotency) finish(e *idemEntry, a *answer) {
	m.mu.Lock()
	e.ans = a
	m.mu.Unlock()
	close(e.done)
}

// recorder captures a handler's answer while writing it through.
type recorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, b...)
	return r.ResponseWriter.Write(b)
}
