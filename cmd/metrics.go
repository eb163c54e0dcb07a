package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/writhq/writ/broker/httpapi"
)

// metricsFlags are writ serve's flags for /metrics.
type metricsFlags struct {
	listen    string // --metrics-listen: serve /metrics here only
	tokenFile string // --metrics-token-file: require this bearer token
}

// metricsOptions are what the agent API needs to know.
type metricsOptions struct {
	token     string
	elsewhere bool
}

func addMetricsFlags(fl *pflag.FlagSet, f *metricsFlags) {
	fl.StringVar(&f.listen, "metrics-listen", "", "serve /metrics on this address only, not on the public API (env WRIT_METRICS_LISTEN)")
	fl.StringVar(&f.tokenFile, "metrics-token-file", "", "file holding a bearer token /metrics then requires (env WRIT_METRICS_TOKEN_FILE)")
}

func (f metricsFlags) options() (metricsOptions, error) {
	o := metricsOptions{elsewhere: f.listen != ""}
	if f.tokenFile == "" {
		return o, nil
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return o, fmt.Errorf("read --metrics-token-file: %w", err)
	}
	o.token = strings.TrimSpace(string(b))
	if len(o.token) < 16 {
		return o, fmt.Errorf("--metrics-token-file %s holds a token of %d characters; use at least 16 random ones", f.tokenFile, len(o.token))
	}
	return o, nil
}

// startMetricsListener serves api's /metrics (and nothing else) on addr
// until the returned stop is called, and says where it listens; with addr
// empty it does nothing.
func startMetricsListener(addr string, api *httpapi.Server, log *slog.Logger) (stop func(), at string, err error) {
	if addr == "" {
		return func() {}, "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on --metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", api.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("serving /metrics on its own address", "listen", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, ln.Addr().String(), nil
}
