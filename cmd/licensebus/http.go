package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/licensebus/licensebus/internal/metrics"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/rs/zerolog"
)

// Defaults of serve's HTTP listeners. Loopback: /metrics, /healthz and
// /readyz need no login (they show no license data, no install code, no
// license id), so they are not on a network interface unless the operator
// puts them there (--http 0.0.0.0:8080 in a container).
const (
	defaultHTTPAddr = "127.0.0.1:8080"
	readyTimeout    = 5 * time.Second
)

// probes serves the endpoints every listener of serve has: /metrics,
// /healthz and /readyz, while the server starts and once it runs.
type probes struct {
	metrics *metrics.Metrics
	server  atomic.Pointer[Server] // nil while starting
}

// routes returns the mux of the main listener (--http): the probes, and
// the routes the web console mounts (issue 20: a func of the Server
// returning an http.Handler, added here as mux.Handle("/", …)).
func (p *probes) routes() *http.ServeMux {
	mux := http.NewServeMux()
	p.mount(mux)
	return mux
}

// mount adds the probes to mux: all that --metrics-listen serves.
func (p *probes) mount(mux *http.ServeMux) {
	mux.Handle("GET /metrics", p.metrics.Handler())
	mux.HandleFunc("GET /healthz", p.healthz)
	mux.HandleFunc("GET /readyz", p.readyz)
}

// healthz: the process is alive. 503 once a component stopped with an
// error (serve keeps running, and only a restart brings it back).
func (p *probes) healthz(w http.ResponseWriter, _ *http.Request) {
	if s := p.server.Load(); s != nil {
		if err := s.Err(); err != nil {
			plain(w, http.StatusServiceUnavailable, "failed: %v\n", err)
			return
		}
	}
	plain(w, http.StatusOK, "ok\n")
}

// readyz: connected, streams there, every job caught up (Server.Ready);
// 503 with the reason otherwise.
func (p *probes) readyz(w http.ResponseWriter, r *http.Request) {
	s := p.server.Load()
	if s == nil {
		plain(w, http.StatusServiceUnavailable, "not ready: starting\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		plain(w, http.StatusServiceUnavailable, "not ready: %v\n", err)
		return
	}
	plain(w, http.StatusOK, "ready\n")
}

func plain(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, format, args...)
}

// observer is serve's telemetry: the tracer provider, the metrics and
// the HTTP listeners, up before the server starts (so the orchestrator
// sees it alive while it restores its read models) and down after it
// stopped.
type observer struct {
	probes  probes
	servers []*http.Server
	log     zerolog.Logger
}

// startObserving puts the invocation's tracer provider and new metrics in
// cfg, and starts the listeners: httpAddr (the main one,
// "" for none) and metricsAddr (probes only, "" for none).
func (a *app) startObserving(ctx context.Context, cfg *ServeConfig, httpAddr, metricsAddr string) (*observer, error) {
	if httpAddr != "" && httpAddr == metricsAddr {
		return nil, usageError{fmt.Errorf("--http and --metrics-listen are both %s: give --metrics-listen another address, or leave it out (--http serves /metrics too)", httpAddr)}
	}
	o := &observer{log: cfg.Logger}
	tp := a.tracing.provider // set up from the environment with the command line
	cfg.Telemetry.TracerProvider = tp
	if tp != nil {
		cfg.Logger.Info().Str("endpoint", first(a.getenv(tracing.EnvTracesEndpoint), a.getenv(tracing.EnvEndpoint))).Msg("exporting traces over OTLP")
	}
	o.probes.metrics = metrics.New(metrics.Config{})
	cfg.Telemetry.Metrics = o.probes.metrics
	for _, l := range []struct {
		addr, name, flag string
		full             bool
	}{{httpAddr, "http", "--http", true}, {metricsAddr, "metrics", "--metrics-listen", false}} {
		if l.addr == "" {
			continue
		}
		mux := http.NewServeMux()
		if l.full {
			mux = o.probes.routes()
		} else {
			o.probes.mount(mux)
		}
		if err := o.listen(l.addr, l.name, l.flag, mux); err != nil {
			o.close()
			return nil, err
		}
	}
	return o, nil
}

func (o *observer) listen(addr, name, flag string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s listener: %w (choose another with %s, or %s \"\" for none)", name, err, flag, flag)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	o.servers = append(o.servers, srv)
	o.log.Info().Str("listener", name).Str("addr", ln.Addr().String()).Msg("http listening")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error().Err(err).Str("listener", name).Msg("http listener stopped")
		}
	}()
	return nil
}

// serving says the server is up: readiness is its from now on.
func (o *observer) serving(s *Server) { o.probes.server.Store(s) }

// close stops the listeners (the app flushes the spans).
func (o *observer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range o.servers {
		_ = srv.Shutdown(ctx)
	}
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
