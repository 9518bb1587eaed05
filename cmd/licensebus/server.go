package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/cloud"
	"github.com/licensebus/licensebus/handlers/device"
	"github.com/licensebus/licensebus/handlers/driver"
	"github.com/licensebus/licensebus/handlers/provisioner"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/licensebus/licensebus/internal/keyring"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ServeConfig configures a Server.
type ServeConfig struct {
	DataDir string // embedded store; default ./licensebus-data
	Listen  string // embedded client listener; default 127.0.0.1:4222
	NatsURL string // join this NATS instead of embedding one
	Workers int
	Batch   int // messages per pull of the handlers' consumers
	// ProvisionRate is reactive provisioning's devices per second per
	// SmartServer; NoProvisioner leaves reactive provisioning to another
	// process (tests run their own).
	ProvisionRate float64
	NoProvisioner bool
	// Horizon is how long a command id is remembered: its repeat gets the
	// first outcome, and the outcomes bucket keeps it; default
	// events.DefaultHorizon.
	Horizon time.Duration
	// DedupeWindow replaces JetStream's dedupe windows of the command and
	// event streams (tests of repeats after them); 0 keeps bus's.
	DedupeWindow time.Duration
	// Cluster settings (see cluster.go): the node's name, the replicas of
	// streams and buckets (0: DefaultReplicas), the lease TTL of the
	// singleton jobs (0: elect.DefaultTTL), and a hook told when this
	// node starts or stops leading a job (metrics).
	Name     string
	Replicas int
	LeaseTTL time.Duration
	OnLeader func(job string, leading bool)
	// SigningKeys are the cloud's signing key files (--signing-key), the
	// first one signing: how the nodes of a cluster share one key. None:
	// the keys of <DataDir>/signing, created on first start.
	SigningKeys []string
	// NoAuth runs the embedded server open to anyone, as before
	// identities (development only). Creds is the service identity's
	// creds file when joining a NATS with NatsURL.
	NoAuth bool
	Creds  string
	Logger zerolog.Logger
	Now    func() time.Time
	// Telemetry: see observe.go.
	Telemetry TelemetryConfig
}

// Server is a running licensebus: the embedded NATS server (unless it joined
// one), both handler sides, the projections and the query API.
type Server struct {
	ns       *server.Server
	nc       *nats.Conn // the API's and the streams' setup
	js       jetstream.JetStream
	conns    []*nats.Conn // every connection, nc first
	lic      *licensing.Model
	dev      *devices.Model
	ro       *rollouts.Model
	exec     *driver.Executor
	outcomes *licensing.Outcomes
	runner   *projections.Runner
	elector  *elect.Elector
	feed     *bus.Feed
	ring     *keyring.Ring
	log      zerolog.Logger
	obs      observed

	// access is who may do what (identities, credentials, refusals);
	// outcomesKV the outcomes' bucket, where the API waits for them.
	access     *access
	outcomesKV jetstream.KeyValue

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// StartServer starts everything and returns once the streams exist and the
// handlers and projections are running.
func StartServer(ctx context.Context, cfg ServeConfig) (*Server, error) {
	s := &Server{log: cfg.Logger, access: &access{log: cfg.Logger}}
	var err error
	if s.ring, err = openRing(cfg); err != nil {
		return nil, err
	}
	if cfg.NatsURL == "" {
		if cfg.DataDir == "" {
			cfg.DataDir = "licensebus-data"
		}
		if cfg.Listen == "" {
			cfg.Listen = "127.0.0.1:4222"
		}
		dir, aerr := filepath.Abs(cfg.DataDir)
		if aerr != nil {
			return nil, aerr
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		sc := bus.ServerConfig{StoreDir: dir, Listen: cfg.Listen, Logger: cfg.Logger}
		if err := s.access.prepareEmbedded(cfg, dir, &sc); err != nil {
			return nil, err
		}
		s.ns, err = bus.StartServer(sc)
		if err != nil {
			return nil, err
		}
	} else if err := s.access.prepareJoin(cfg); err != nil {
		return nil, err
	}
	s.nc, s.js, err = s.connect(cfg.NatsURL, "")
	if err != nil {
		s.Close()
		return nil, err
	}
	replicas := s.replicas(cfg)
	if err := bus.EnsureStreams(ctx, s.js, bus.ReportRepairs(cfg.Logger), bus.DedupeWindow(cfg.DedupeWindow), bus.WithReplicas(replicas)); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.access.start(ctx, s, replicas.For(1)); err != nil {
		s.Close()
		return nil, err
	}
	// Each component has a connection of its own. A connection is one
	// ordered pipe each way, read by one loop in the server and one in
	// nats.go: shared, a handler's append and its ack would queue behind
	// the auditor's and the projections' writes and the feed's deliveries.
	js := map[string]jetstream.JetStream{}
	for _, role := range []string{"feed", "cloud", "device", "rollouts", "provisioner", "projections", "audit", "elect"} {
		if _, js[role], err = s.connect(cfg.NatsURL, role); err != nil {
			s.Close()
			return nil, err
		}
	}
	dl := bus.NewDeadLetters(s.js)
	// The singleton jobs are elected; leases renew on a connection of
	// their own, behind nobody's writes.
	if err := s.startElection(ctx, cfg, js["elect"], replicas); err != nil {
		s.Close()
		return nil, err
	}
	// One read of the event stream for every handler of this process.
	feed := bus.NewFeed(js["feed"], cfg.Logger)
	feed.Elect(s.elector)
	s.feed = feed
	tel := s.observe(cfg, feed)
	ch, err := cloud.New(ctx, cloud.Config{JS: js["cloud"], Logger: cfg.Logger, Workers: cfg.Workers, Batch: cfg.Batch, Now: cfg.Now, DeadLetters: dl, Feed: feed, Horizon: cfg.Horizon, Keys: s.ring, Telemetry: tel})
	if err != nil {
		s.Close()
		return nil, err
	}
	dh, err := device.New(ctx, device.Config{JS: js["device"], Logger: cfg.Logger, Workers: cfg.Workers, Batch: cfg.Batch, DeadLetters: dl, Feed: feed, Horizon: cfg.Horizon, Keys: s.ring, Telemetry: tel})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.exec, err = driver.New(ctx, driver.Config{JS: js["rollouts"], Logger: cfg.Logger, Now: cfg.Now, Feed: feed, Horizon: cfg.Horizon, Telemetry: tel, Election: s.elector})
	if err != nil {
		s.Close()
		return nil, err
	}
	// Every fold registers on the feed before anything runs.
	var prov *provisioner.Provisioner
	if !cfg.NoProvisioner {
		if prov, err = provisioner.New(provisioner.Config{JS: js["provisioner"], Logger: cfg.Logger, Rate: cfg.ProvisionRate, Feed: feed}); err != nil {
			s.Close()
			return nil, err
		}
	}
	horizon, now := cfg.Horizon, cfg.Now
	if horizon <= 0 {
		horizon = events.DefaultHorizon
	}
	if now == nil {
		now = time.Now
	}
	s.lic, s.dev, s.ro, s.outcomes = licensing.New(cfg.Now), devices.New(), rollouts.New(), licensing.OutcomesWithin(horizon, now)
	// Outcomes last: a caller that sees its outcome finds every view updated.
	s.runner = projections.NewRunner(js["projections"], cfg.Logger, s.lic, s.dev, s.ro, s.outcomes)
	// The runner follows the handlers' feed once it has caught up, so the
	// process reads and decodes the event stream once.
	s.runner.UseTap(feed.Tap(8192))
	s.runner.Elect(s.elector)
	s.runner.SetReplicas(replicas.For(1))
	s.runner.UseTracer(tel.Tracer)
	auditTap := feed.Tap(8192)
	if err := s.runner.Open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.scale(ctx, replicas); err != nil {
		s.Close()
		return nil, err
	}

	rctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.obs.ctx = cancel, rctx
	s.run(rctx, "cloud", ch.Run)
	s.run(rctx, "device", dh.Run)
	s.run(rctx, "projections", s.runner.Run)
	s.run(rctx, "elect", s.elector.Run)
	auditor := audit.New(audit.Config{JS: js["audit"], Logger: cfg.Logger, Tap: auditTap, Key: s.ring.Current})
	s.run(rctx, "audit", func(ctx context.Context) error { return s.elector.Lead(ctx, AuditJob, auditor.Run) })
	s.run(rctx, "rollouts", s.exec.Run)
	if s.access.registry != nil {
		s.run(rctx, "creds", s.access.registry.Run)
	}
	s.access.export(s.Metrics())
	if prov != nil {
		s.run(rctx, "provisioner", prov.Run)
	}
	if err := s.serveAPI(rctx); err != nil {
		s.Close()
		return nil, err
	}
	s.log.Info().Str("nats", s.URL()).Msg("licensebus serving")
	return s, nil
}

// connect opens one connection of the process: in process to the
// embedded server, else to url. role names it ("licensebus serve/audit").
func (s *Server) connect(url, role string) (*nats.Conn, jetstream.JetStream, error) {
	name := "licensebus serve"
	if role != "" {
		name += "/" + role
	}
	opts := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, s.access.opts...)
	if s.ns != nil {
		url = ""
		opts = append(opts, nats.InProcessServer(s.ns))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", name, err)
	}
	s.conns = append(s.conns, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	return nc, js, nil
}

func (s *Server) run(ctx context.Context, name string, f func(context.Context) error) {
	ctx = s.started(ctx, name)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.stopped(name)
		if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error().Err(err).Str("component", name).Msg("stopped with error")
			s.errMu.Lock()
			if s.err == nil {
				s.err = fmt.Errorf("%s: %w", name, err)
			}
			s.errMu.Unlock()
		}
	}()
}

// Err is the first error a component stopped with, if any.
func (s *Server) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// URL is where clients connect.
func (s *Server) URL() string {
	if s.ns != nil {
		return s.ns.ClientURL()
	}
	if s.nc != nil {
		return s.nc.ConnectedUrlRedacted()
	}
	return ""
}

// Close stops the components, drains the connection and shuts the embedded
// server down.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	for _, nc := range s.conns {
		_ = nc.Drain()
		nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}
