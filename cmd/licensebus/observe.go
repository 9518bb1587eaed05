package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/metrics"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// DefaultReadyMaxLag is how many events a job may trail the event stream
// and still count as caught up: about a second of the bench's peak write
// rate, far more than a job keeping up ever trails by (a fetch of the
// feed), far less than one catching up after a restart or a rebuild.
const DefaultReadyMaxLag = 10_000

// TelemetryConfig says how a Server observes itself.
type TelemetryConfig struct {
	// Metrics receives the server's metrics; nil: a registry of its own.
	// serve passes the one it serves from the start, before the server is
	// up.
	Metrics *metrics.Metrics
	// TracerProvider makes each step a span; nil turns spans off (every
	// message still carries its trace context).
	TracerProvider trace.TracerProvider
	// ReadyMaxLag is how many events each job may trail the event stream
	// while the server reports ready; 0 means DefaultReadyMaxLag.
	ReadyMaxLag uint64
}

// observed is what a Server keeps to observe itself.
type observed struct {
	metrics *metrics.Metrics
	tracer  *tracing.Tracer
	feed    *bus.Feed
	fold    *bus.Fold // the metrics' fold: the feed's position
	maxLag  uint64
	ctx     context.Context // the components' context

	mu      sync.Mutex
	running map[string]context.CancelFunc // components running, by name
}

// observe sets up the server's metrics and tracer, registers the metrics'
// fold on feed, and returns what the handlers observe through.
func (s *Server) observe(cfg ServeConfig, feed *bus.Feed) bus.Telemetry {
	o := &s.obs
	o.metrics = cfg.Telemetry.Metrics
	if o.metrics == nil {
		o.metrics = metrics.New(metrics.Config{})
	}
	o.tracer = tracing.New(cfg.Telemetry.TracerProvider)
	o.maxLag = cfg.Telemetry.ReadyMaxLag
	if o.maxLag == 0 {
		o.maxLag = DefaultReadyMaxLag
	}
	o.feed = feed
	o.fold = feed.Fold(o.metrics.Fold)
	o.running = map[string]context.CancelFunc{}
	o.metrics.SetSources(metrics.Sources{
		Devices: func() metrics.Colours {
			if s.dev == nil {
				return metrics.Colours{}
			}
			t := s.dev.Totals()
			return metrics.Colours{Purple: t.Purple, Blue: t.Blue, Green: t.Green}
		},
		Licenses: func() []metrics.LicenseCount {
			var cs []licensing.Count
			if s.lic != nil {
				cs = s.lic.Counts()
			}
			out := make([]metrics.LicenseCount, len(cs))
			for i, c := range cs {
				out[i] = metrics.LicenseCount{Kind: c.Kind, State: c.State, N: c.N}
			}
			return out
		},
		Lags:        s.lags,
		DeadLetters: s.deadLetters,
		Server:      s.ns,
	})
	return bus.Telemetry{Observer: o.metrics, Tracer: o.tracer}
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.obs.metrics }

// started records that component name runs, as its job's leader, and
// returns its context (which stop cancels).
func (s *Server) started(ctx context.Context, name string) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	s.obs.mu.Lock()
	s.obs.running[name] = cancel
	s.obs.mu.Unlock()
	if !electedComponents[name] {
		s.obs.metrics.SetLeader(name, true)
	}
	return ctx
}

// stopped records that component name returned.
func (s *Server) stopped(name string) {
	s.obs.mu.Lock()
	delete(s.obs.running, name)
	s.obs.mu.Unlock()
	if !electedComponents[name] {
		s.obs.metrics.SetLeader(name, false)
	}
}

// jobs are the components every serve runs; readiness wants each running.
var jobs = []string{"cloud", "device", "projections", "audit", "rollouts"}

// lags reads how far each job of the process trails its streams: the
// handlers' state and the read models in memory, each reactor, and the
// audit trail (written by one process of many: each reports the trail's).
func (s *Server) lags(ctx context.Context) ([]metrics.Lag, error) {
	head, err := bus.LastSeq(ctx, s.js, events.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("event stream: %w", err)
	}
	behind := func(at uint64) uint64 { return head - min(head, at) }
	var out []metrics.Lag
	if s.obs.fold != nil {
		out = append(out, metrics.Lag{Kind: metrics.LagFold, Messages: behind(s.obs.fold.Last())})
	}
	if s.runner != nil {
		out = append(out, metrics.Lag{Kind: metrics.LagProjections, Messages: behind(s.runner.Applied())})
	}
	if s.obs.feed != nil {
		for _, r := range s.obs.feed.Reactors() {
			out = append(out, metrics.Lag{Kind: metrics.LagReactor, Name: r.Name(), Messages: behind(r.Done())})
		}
	}
	st, err := audit.ReadStatus(ctx, s.js)
	switch {
	case err == nil:
		out = append(out, metrics.Lag{Kind: metrics.LagAudit, Messages: st.Behind()})
	case !errors.Is(err, audit.ErrNoTrail):
		return out, fmt.Errorf("audit trail: %w", err)
	}
	return out, nil
}

// deadLetters counts the dead-letter stream's messages by the stream they
// came from (its subjects lb.dlq.<stream>).
func (s *Server) deadLetters(ctx context.Context) (map[string]uint64, error) {
	str, err := s.js.Stream(ctx, events.DeadLettersStream)
	if err != nil {
		return nil, err
	}
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(events.AllDeadLetters))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{"commands": 0, "events": 0}
	for subj, n := range info.State.Subjects {
		if name, ok := strings.CutPrefix(subj, "lb.dlq."); ok && (name == "commands" || name == "events") {
			out[name] = n
		}
	}
	return out, nil
}

// Ready says whether the server can do its work now, and why not: every
// NATS connection up, the streams there, every job running and caught up
// to within ReadyMaxLag events of the event stream (the handlers' state,
// the read models, each reactor). The audit trail is not a condition: one
// process of many writes it, and its lag is a metric with an alert.
func (s *Server) Ready(ctx context.Context) error {
	for _, nc := range s.conns {
		if !nc.IsConnected() {
			return fmt.Errorf("NATS connection %q is %s", nc.Opts.Name, strings.ToLower(nc.Status().String()))
		}
	}
	for _, name := range []string{events.CommandsStream, events.EventsStream, events.DeadLettersStream, trail.Stream} {
		if _, err := s.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	lags, err := s.lags(ctx)
	if err != nil {
		return err
	}
	var why []string
	for _, l := range lags {
		if l.Kind == metrics.LagAudit || l.Messages <= s.obs.maxLag {
			continue
		}
		name := l.Kind
		if l.Name != "" {
			name += " " + l.Name
		}
		why = append(why, fmt.Sprintf("%s %d events behind (bound %d)", name, l.Messages, s.obs.maxLag))
	}
	s.obs.mu.Lock()
	for _, name := range jobs {
		if s.obs.running[name] == nil {
			why = append(why, name+" not running")
		}
	}
	s.obs.mu.Unlock()
	if len(why) > 0 {
		return errors.New(strings.Join(why, "; "))
	}
	return nil
}
