package policy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/broker"
)

// DefaultInterval is how often a Watcher looks at its file.
const DefaultInterval = 2 * time.Second

// WatchOptions tune a Watcher. The zero value is usable.
type WatchOptions struct {
	// Interval is how often the file is checked (default 2 s).
	Interval time.Duration
	// OnChange is called after each reload attempt that changed something:
	// with the new policy and a nil error when the file changed and
	// compiled, or with the last good policy and the error when it did
	// not (a file that stays broken is reported once). It runs on the
	// watching goroutine: keep it short.
	OnChange func(p *Policy, err error)
	// Logger receives reloads and errors; slog.Default() when nil.
	Logger *slog.Logger
}

// Watcher is a policy file kept current: it implements broker.Policy by
// evaluating the last policy that loaded, and Run reloads the file when
// its content changes. A file that no longer loads (a syntax error, a bad
// expression, a missing file) keeps the last good policy in force and is
// reported through Err and OnChange, never by evaluating requests against
// half a policy.
type Watcher struct {
	path string
	opts WatchOptions

	cur   atomic.Pointer[Policy]
	stats stats

	mu  sync.Mutex
	err error
	sum [32]byte // of the content last tried, good or bad; zero after a read failed
}

var _ broker.EffectsPolicy = (*Watcher)(nil)

// NewWatcher loads the policy at path. It fails if the file does not load:
// writ does not start without the policy its configuration names.
func NewWatcher(path string, opts WatchOptions) (*Watcher, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Watcher{path: path, opts: opts}
	data, err := w.read()
	if err != nil {
		return nil, err
	}
	p, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	w.cur.Store(p)
	w.sum = sha256.Sum256(data)
	return w, nil
}

// Policy returns the policy in force.
func (w *Watcher) Policy() *Policy { return w.cur.Load() }

// Err returns why the file on disk is not the policy in force, or nil
// when it is.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Path is the watched file.
func (w *Watcher) Path() string { return w.path }

// Evaluate implements broker.Policy with the policy in force, for a
// caller that applies no effects (see Policy.Evaluate).
func (w *Watcher) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	res, fx := w.EvaluateEffects(ctx, in)
	return withoutEffects(in, res, fx)
}

// EvaluateEffects implements broker.EffectsPolicy with the policy in
// force, and counts the shadow rules that matched.
func (w *Watcher) EvaluateEffects(ctx context.Context, in broker.PolicyInput) (broker.PolicyResult, broker.PolicyEffects) {
	res, fx := w.cur.Load().EvaluateEffects(ctx, in)
	w.stats.record(res, fx)
	return res, fx
}

// Run checks the file every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.Check()
		}
	}
}

// Check reads the file once and reloads it if its content changed,
// reporting whether the policy in force changed. The file is read and
// hashed every time rather than trusting its modification time, which
// can miss two writes within the file system's time granularity; a
// policy file is small.
func (w *Watcher) Check() bool {
	data, err := w.read()
	if err != nil {
		w.report(nil, err, [32]byte{}) // read again in full once it is back
		return false
	}
	sum := sha256.Sum256(data)
	w.mu.Lock()
	same := sum == w.sum
	w.mu.Unlock()
	if same {
		return false // unchanged: still in force, or still the broken content already reported
	}
	p, err := Parse(w.path, data)
	if err != nil {
		w.report(nil, err, sum)
		return false
	}
	w.cur.Store(p)
	w.report(p, nil, sum)
	return true
}

// report records the outcome of a reload attempt and tells OnChange.
func (w *Watcher) report(p *Policy, err error, sum [32]byte) {
	w.mu.Lock()
	was := w.err
	w.sum, w.err = sum, err
	w.mu.Unlock()
	switch {
	case err == nil:
		w.opts.Logger.Info("policy reloaded", "file", w.path, "rules", p.Len())
	case was != nil && was.Error() == err.Error():
		return // the same failure again (a missing file): said already
	default:
		w.opts.Logger.Error("policy not reloaded; the last good policy stays in force", "file", w.path, "err", err)
	}
	if w.opts.OnChange != nil {
		if p == nil {
			p = w.cur.Load()
		}
		w.opts.OnChange(p, err)
	}
}

// read reads the file within the size limit (Parse refuses a larger one).
func (w *Watcher) read() ([]byte, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", w.path, err)
	}
	return data, nil
}
