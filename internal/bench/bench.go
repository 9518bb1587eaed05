// Package bench measures licensebus against the raw JetStream it stands on,
// in one run on one embedded server, so that the ratios between the two
// mean something (see the JetStream baseline note: on 2 shared cores
// numbers move from one run to the next).
//
// Run starts a nats-server with a file store in a temporary directory,
// measures raw JetStream on a stream of its own, appends events through the
// handlers' append path, then starts licensebus on the same server (the
// caller supplies how, as package main owns the wiring) and measures
// activations end to end, latency at half load, replay, rebuild and a
// fleet rollout with reactive provisioning.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config sizes one run.
type Config struct {
	Mode string // tiny, quick or full; reported as is

	RawMessages   int // raw async appends (baseline: 200,000)
	SyncPublishes int // raw sequential synchronous publishes (baseline: 5,000)
	CASMessages   int // raw expected-sequence synchronous appends from Workers goroutines

	Appends    int // events appended through bus.Appender
	Workers    int // goroutines of the CAS and Appender phases (baseline: 256)
	Aggregates int // aggregates (subjects) per worker; Workers × Aggregates ≈ the baseline's 10,000 subjects

	Activations        int // SmartServers activated as fast as possible
	LatencyActivations int // SmartServers activated at half the measured rate

	FleetTargets, FleetDevices int // SmartServers and devices per SmartServer of the fleet rollout

	// CPUProfile, if set, receives a CPU profile of the activation phase.
	CPUProfile io.Writer
	// NATSCPUProfile, if set, is the file that receives a CPU profile of
	// the NATS server's own process over the same phase.
	NATSCPUProfile string
	// NATSMemProfile, if set, is the file that receives a heap profile of
	// the NATS server's own process, taken after the fleet.
	NATSMemProfile string
	// FleetCPUProfile, if set, receives a CPU profile of the fleet rollout.
	FleetCPUProfile io.Writer
	// RebuildCPUProfile, if set, receives a CPU profile of the rebuild.
	RebuildCPUProfile io.Writer
	// MemProfile, if set, receives a heap profile taken after the fleet.
	MemProfile io.Writer
	// Progress, if set, receives one line per phase.
	Progress io.Writer
	// Server starts the NATS server; nil runs it in this process.
	Server ServerFunc
	// Probe, if set, measures raw JetStream beside the latency phase.
	Probe ProbeFunc
}

// Full is the default run: the baseline's raw sizes.
func Full() Config {
	return Config{Mode: "full", RawMessages: 200_000, SyncPublishes: 5_000, CASMessages: 100_000,
		Appends: 100_000, Workers: 256, Aggregates: 40, Activations: 20_000, LatencyActivations: 10_000,
		FleetTargets: 200, FleetDevices: 10}
}

// Quick is the baseline's quick size, for a shorter run.
func Quick() Config {
	return Config{Mode: "quick", RawMessages: 50_000, SyncPublishes: 2_000, CASMessages: 20_000,
		Appends: 20_000, Workers: 256, Aggregates: 40, Activations: 5_000, LatencyActivations: 2_500,
		FleetTargets: 200, FleetDevices: 10}
}

// Tiny only checks that every phase runs; its numbers mean nothing.
func Tiny() Config {
	return Config{Mode: "tiny", RawMessages: 2_000, SyncPublishes: 100, CASMessages: 500,
		Appends: 500, Workers: 16, Aggregates: 4, Activations: 30, LatencyActivations: 20,
		FleetTargets: 4, FleetDevices: 2}
}

// Product is a running licensebus, as the bench needs to see it: the
// licensing and devices read models (what the Manage Licenses dialog and
// the Devices widget show) and the projections runner that feeds them.
type Product struct {
	Licensing   *licensing.Model
	Devices     *devices.Model
	Projections *projections.Runner
	// Tracing, if set, turns the product's spans on or off (they start
	// off); the bench compares activations both ways.
	Tracing func(on bool)
	// Err, if set, is the first error a component of the product stopped
	// with; it explains a phase that never finished.
	Err func() error
	// Close stops the product (not the NATS server). It is required.
	Close func()
	// Console, if set, is the product's web console, open (no sign-in):
	// the bench draws SmartServer pages with it after the fleet.
	Console http.Handler
}

// StartFunc starts licensebus joined to the NATS server at url, as the
// service of the creds file when there is one.
type StartFunc func(ctx context.Context, url, creds string) (*Product, error)

// PayloadBytes is the size of every raw message: a JSON license event, as
// in the baseline.
const PayloadBytes = 600

// rawStream holds the raw phases' messages, apart from the product's streams.
const rawStream = "BENCH_RAW"

// Result is one run's figures. Rates are per second of wall time.
type Result struct {
	Mode           string  `json:"mode"`
	GoVersion      string  `json:"go_version"`
	ServerVersion  string  `json:"server_version"`
	Cores          int     `json:"cores"`
	PayloadBytes   int     `json:"payload_bytes"`
	Messages       int     `json:"messages"` // raw async appends
	SyncIntervalS  float64 `json:"sync_interval_s"`
	RawMsgBytes    float64 `json:"raw_msg_bytes"`   // stored bytes per raw message
	EventMsgBytes  float64 `json:"event_msg_bytes"` // stored bytes per appended product event
	TotalSeconds   float64 `json:"total_seconds"`
	Activations    int     `json:"activations"`
	LatencySamples int     `json:"e2e_samples"`
	ReplayEvents   int     `json:"replay_events"`

	RawAppend      float64 `json:"raw_append_msgs_per_s"`
	RawSyncP50     float64 `json:"raw_sync_p50_ms"`
	RawSyncP99     float64 `json:"raw_sync_p99_ms"`
	RawCASSync     float64 `json:"raw_cas_sync_msgs_per_s"`
	RawReplay      float64 `json:"raw_replay_msgs_per_s"`
	AppendRate     float64 `json:"append_events_per_s"`
	ActivationRate float64 `json:"activations_per_s"`
	MsgsPerAct     float64 `json:"msgs_per_activation"`
	ProductMsgs    float64 `json:"product_msgs_per_s"`
	Efficiency     float64 `json:"efficiency"`
	E2EOffered     float64 `json:"e2e_offered_per_s"`
	E2EP50         float64 `json:"e2e_p50_ms"`
	E2EP99         float64 `json:"e2e_p99_ms"`
	E2EP999        float64 `json:"e2e_p99_9_ms"`
	E2EHops        []Hop   `json:"e2e_hops"` // the e2e latency step by step
	// Probe is raw JetStream over the same seconds, on the same server,
	// from a process of its own (ProbeFunc): publish to ack. Absent when
	// the run had no probe.
	Probe *ProbeResult `json:"raw_probe,omitempty"`
	// What the collector did in each process while the latency was
	// measured: its cycles, and its CPU as cores busy on average (the
	// runtime's estimate, counted when a cycle ends). Each cycle's marking
	// takes CPU the other steps of an activation wait for.
	E2EGCCycles     uint64  `json:"e2e_gc_cycles"`
	E2EGCCores      float64 `json:"e2e_gc_cores"`
	NATSE2EGCCycles uint64  `json:"nats_e2e_gc_cycles"`
	NATSE2EGCCores  float64 `json:"nats_e2e_gc_cores"`
	// Bytes each process allocated per activation in the burst (KB): what
	// makes the collector run, steadier than timings on shared cores.
	ActAllocKB     float64 `json:"alloc_kb_per_activation"`
	NATSActAllocKB float64 `json:"nats_alloc_kb_per_activation"`
	Rebuild        float64 `json:"rebuild_events_per_s"`
	RebuildRatio   float64 `json:"rebuild_ratio"`

	// Alternating bursts with the product's tracing off and on (spans
	// made, none exported): TracingOverhead = 1 - traced/untraced.
	ActivationRateUntraced float64 `json:"activations_per_s_untraced"`
	ActivationRateTraced   float64 `json:"activations_per_s_traced"`
	TracingOverhead        float64 `json:"tracing_overhead"`
	// The licensebus process's CPU per activation in those bursts, and
	// TracingCPUOverhead = traced/untraced - 1.
	ActCPUUntraced     float64 `json:"cpu_us_per_activation_untraced"`
	ActCPUTraced       float64 `json:"cpu_us_per_activation_traced"`
	TracingCPUOverhead float64 `json:"tracing_cpu_overhead"`

	// The run's server runs with auth, as serve does by default, its
	// commands from an operator. The same burst of AuthActivations on
	// fresh servers with and without auth, alternating, gives the rates
	// (medians) and AuthOverhead = 1 − on/off.
	AuthActivations    int     `json:"auth_activations"`
	ActivationsAuthOn  float64 `json:"activations_auth_on_per_s"`
	ActivationsAuthOff float64 `json:"activations_auth_off_per_s"`
	AuthOverhead       float64 `json:"auth_overhead"`
	// Both processes' CPU per activation in those bursts (µs; Linux), and
	// AuthCPUOverhead = on/off − 1: steadier than the rates on shared cores.
	AuthCPUOn       float64 `json:"cpu_us_per_activation_auth_on"`
	AuthCPUOff      float64 `json:"cpu_us_per_activation_auth_off"`
	AuthCPUOverhead float64 `json:"auth_cpu_overhead"`

	// CPU time per unit of work in µs, during the raw async append and the
	// activation burst: of the licensebus process (the product and the
	// bench driving it, and the NATS server too when it shares the
	// process) and of the NATS server's own process; 0 where not measured
	// (not Linux, or the server shares the process).
	RawCPU     float64 `json:"raw_cpu_us_per_msg"` // the publishing process
	NATSRawCPU float64 `json:"nats_cpu_us_per_raw_msg"`
	ActCPU     float64 `json:"cpu_us_per_activation"`
	NATSActCPU float64 `json:"nats_cpu_us_per_activation"`
	// NATSMsgCost is the server's CPU per message the product writes, in
	// units of its CPU per raw async message: what the product's way of
	// writing (expected sequences, deliveries, acks, KV) costs the server.
	NATSMsgCost float64 `json:"nats_cost_per_msg_vs_raw"`
	// CPU per event of the raw replay and of the rebuild (medians of the
	// rounds): the rebuild's rate moves with the machine, its CPU per event
	// much less.
	ReplayCPU      float64 `json:"replay_cpu_us_per_msg"`
	NATSReplayCPU  float64 `json:"nats_replay_cpu_us_per_msg"`
	RebuildCPU     float64 `json:"rebuild_cpu_us_per_event"`
	NATSRebuildCPU float64 `json:"nats_rebuild_cpu_us_per_event"`

	FleetTargets        int     `json:"fleet_targets"`
	FleetDevices        int     `json:"fleet_devices"`
	FleetSecondsToGreen float64 `json:"fleet_seconds_to_green"`
	// ConsoleP99MS is the server time of a console page of one
	// SmartServer with the fleet loaded (Product.Console), p99.
	ConsoleP99MS       float64 `json:"console_p99_ms"`
	FleetTargetsPerMin float64 `json:"fleet_targets_per_min"`

	// Memory of the licensebus process (product and bench harness; the
	// NATS server too when NATSProcess is "shared").
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	RSSAfterFleetMB float64 `json:"rss_after_fleet_mb"`
	// NATSProcess is "own" when the NATS server ran in a process of its
	// own (its memory below), "shared" when in the licensebus process.
	NATSProcess         string  `json:"nats_process"`
	MemoryLimitMB       float64 `json:"memory_limit_mb"` // soft limit of each process (GOMEMLIMIT); 0 for none
	GCPercent           int     `json:"gc_percent"`      // GOGC of the licensebus process, 0 when paced
	GC                  string  `json:"gc"`              // the collector's setting, as serve logs it
	NATSPeakRSSMB       float64 `json:"nats_peak_rss_mb"`
	NATSRSSAfterFleetMB float64 `json:"nats_rss_after_fleet_mb"`
}

// Run measures one run of cfg. start starts the product; it is called once,
// after the raw and append phases, so that nothing of the product runs while
// raw JetStream is measured.
func Run(ctx context.Context, cfg Config, start StartFunc) (*Result, error) {
	begin := time.Now()
	startServer := cfg.Server
	if startServer == nil {
		startServer = InProcess
	}
	srv, err := openServer(ctx, "licensebus-bench-*", startServer)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	ns, nc, js := srv.ns, srv.nc, srv.js
	r := &Result{Mode: cfg.Mode, GoVersion: runtime.Version(), ServerVersion: ns.Version, Cores: runtime.NumCPU(),
		PayloadBytes: PayloadBytes, Messages: cfg.RawMessages, SyncIntervalS: ns.SyncInterval.Seconds(), NATSProcess: "shared"}
	if ns.PID != 0 {
		r.NATSProcess = "own"
	}
	if cfg.NATSCPUProfile != "" && ns.CPUProfile == nil {
		return nil, errors.New("a CPU profile of the NATS server needs it in a process of its own")
	}
	if cfg.NATSMemProfile != "" && ns.HeapProfile == nil {
		return nil, errors.New("a heap profile of the NATS server needs it in a process of its own")
	}
	b := &run{cfg: cfg, r: r, nc: nc, js: js, natsPID: ns.PID, natsProfile: ns.CPUProfile, natsHeap: ns.HeapProfile, natsGC: ns.GC, operatorCreds: ns.OperatorCreds,
		url: ns.URL, creds: ns.Creds}
	if err := inPhase(ctx, "raw JetStream", b.raw(ctx)); err != nil {
		return nil, err
	}
	if err := inPhase(ctx, "product append", b.appends(ctx)); err != nil {
		return nil, err
	}
	b.progress("starting licensebus on the same server (catching up %d events)", cfg.Appends)
	p, err := start(ctx, ns.URL, ns.Creds)
	if err != nil {
		return nil, fmt.Errorf("start licensebus: %w", err)
	}
	defer p.Close()
	b.p = p
	if err := b.product(ctx); err != nil {
		if p.Err != nil && p.Err() != nil {
			err = fmt.Errorf("%w (licensebus: %v)", err, p.Err())
		}
		return nil, err
	}
	r.PeakRSSMB, r.RSSAfterFleetMB = peakRSSMB(), currentRSSMB()
	if ns.PID != 0 {
		r.NATSPeakRSSMB, r.NATSRSSAfterFleetMB = processRSSMB(ns.PID)
	}
	for _, c := range b.closers {
		c()
	}
	p.Close()
	ns.Stop()
	if err := inPhase(ctx, "auth overhead", authOverhead(ctx, cfg, startServer, start, r)); err != nil {
		return nil, err
	}
	r.TotalSeconds = time.Since(begin).Seconds()
	r.round()
	return r, nil
}

// benchServer is a run's NATS server, with auth as serve runs by default, in a
// temporary directory, and the service's connection to it: like the
// baseline, the bench talks to it over loopback TCP.
type benchServer struct {
	dir string
	ns  *NATS
	nc  *nats.Conn
	js  jetstream.JetStream
}

// openServer starts a server with start, its store in a new temporary
// directory named after pattern.
func openServer(ctx context.Context, pattern string, start ServerFunc) (*benchServer, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	s := &benchServer{dir: dir}
	if s.ns, err = start(ctx, dir, true); err != nil {
		s.close()
		return nil, err
	}
	if s.nc, err = connect(s.ns.URL, s.ns.Creds); err != nil {
		s.close()
		return nil, err
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close closes the connection, stops the server and removes its store.
func (s *benchServer) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Stop()
	}
	os.RemoveAll(s.dir)
}

// round keeps the figures to the precision a 2-core run can tell apart.
func (r *Result) round() {
	to := func(v *float64, places int) {
		p := math.Pow(10, float64(places))
		*v = math.Round(*v*p) / p
	}
	for _, v := range []*float64{&r.RawAppend, &r.RawCASSync, &r.RawReplay, &r.AppendRate, &r.ActivationRate, &r.ProductMsgs, &r.ActivationsAuthOn, &r.ActivationsAuthOff, &r.AuthCPUOn, &r.AuthCPUOff,
		&r.FleetTargetsPerMin,
		&r.E2EOffered, &r.Rebuild, &r.RawMsgBytes, &r.EventMsgBytes, &r.ActCPU, &r.NATSActCPU} {
		to(v, 0)
	}
	for _, v := range []*float64{&r.RawCPU, &r.NATSRawCPU, &r.NATSMsgCost, &r.ReplayCPU, &r.NATSReplayCPU, &r.RebuildCPU, &r.NATSRebuildCPU} {
		to(v, 2)
	}
	to(&r.ActivationRateUntraced, 0)
	to(&r.ActivationRateTraced, 0)
	to(&r.ActCPUUntraced, 0)
	to(&r.ActCPUTraced, 0)
	to(&r.TracingCPUOverhead, 3)
	for _, v := range []*float64{&r.RawSyncP50, &r.RawSyncP99, &r.E2EP50, &r.E2EP99, &r.E2EP999, &r.Efficiency, &r.RebuildRatio, &r.FleetSecondsToGreen, &r.ConsoleP99MS, &r.TracingOverhead, &r.AuthOverhead, &r.AuthCPUOverhead} {
		to(v, 3)
	}
	for _, v := range []*float64{&r.MsgsPerAct, &r.TotalSeconds, &r.PeakRSSMB, &r.RSSAfterFleetMB, &r.NATSPeakRSSMB, &r.NATSRSSAfterFleetMB} {
		to(v, 1)
	}
}

// run is the state of one Run.
type run struct {
	cfg     Config
	r       *Result
	nc      *nats.Conn
	js      jetstream.JetStream
	natsPID int // the NATS server's process, 0 when it is this one
	// natsProfile starts and stops a CPU profile of that process.
	natsProfile func(path string) error
	// natsHeap writes a heap profile of that process.
	natsHeap func(path string) error
	// natsGC reads the collector's figures of that process.
	natsGC func() (GCStats, error)

	// operatorCreds, with auth, are whom the commands come from; closers
	// close the connections opened for them.
	operatorCreds string
	closers       []func()
	// url and creds reach the server as the service.
	url, creds string

	// Once the product runs:
	p      *Product
	client *client.Client
	// pub publishes activation commands asynchronously; pubFailed counts
	// those JetStream did not store.
	pub       jetstream.JetStream
	pubFailed atomic.Int64
}

func (b *run) progress(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, "bench: "+format+"\n", args...)
	}
}

// raw measures plain JetStream as the baseline note did.
func (b *run) raw(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := b.js.CreateStream(cctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("raw stream: %w", err)
	}
	b.progress("raw async append of %d messages", b.cfg.RawMessages)
	cpu := b.cpuNow()
	rate, err := rawAsync(cctx, b.nc, b.cfg.RawMessages)
	if err != nil {
		return err
	}
	b.r.RawAppend = rate
	b.r.RawCPU, b.r.NATSRawCPU = cpu.perUnit(b.cpuNow(), b.cfg.RawMessages)
	if b.r.RawMsgBytes, err = bytesPerMsg(cctx, b.js, rawStream); err != nil {
		return err
	}
	b.progress("raw sync publish, %d sequential", b.cfg.SyncPublishes)
	if b.r.RawSyncP50, b.r.RawSyncP99, err = rawSync(cctx, b.js, b.cfg.SyncPublishes); err != nil {
		return err
	}
	b.progress("raw expected-sequence sync appends, %d from %d goroutines", b.cfg.CASMessages, b.cfg.Workers)
	if b.r.RawCASSync, err = rawCASSync(cctx, b.js, b.cfg.CASMessages, b.cfg.Workers, b.cfg.Aggregates); err != nil {
		return err
	}
	// Measured: the stream goes, and with it the message ids of its dedupe
	// window (hundreds of thousands, held in the server's memory for two
	// minutes), which the product's phases should not carry.
	if err := b.js.DeleteStream(cctx, rawStream); err != nil {
		return fmt.Errorf("raw stream: %w", err)
	}
	return nil
}

// product measures licensebus once it runs.
func (b *run) product(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := inPhase(ctx, "projections catch up", b.p.Projections.CatchUp(cctx)); err != nil {
		return err
	}
	if err := b.commander(cctx); err != nil {
		return err
	}
	if err := inPhase(ctx, "activations", b.activations(ctx)); err != nil {
		return err
	}
	if err := inPhase(ctx, "tracing overhead", b.tracingOverhead(ctx)); err != nil {
		return err
	}
	if err := inPhase(ctx, "replay and rebuild", b.replay(ctx)); err != nil {
		return err
	}
	if err := inPhase(ctx, "fleet rollout", b.fleet(ctx)); err != nil {
		return err
	}
	actx, acancel := context.WithTimeout(ctx, time.Minute)
	defer acancel()
	if err := inPhase(ctx, "last acks", waitAcked(actx, b.pub)); err != nil {
		return err
	}
	if n := b.pubFailed.Load(); n > 0 {
		return fmt.Errorf("%d activation commands were not stored", n)
	}
	return nil
}

// inPhase names the phase err came from, and says so when the phase ran
// past its own deadline: a bare "context deadline exceeded" does not tell
// where the bench was. ctx is the run's: when it ended, the run was
// stopped, not the phase.
func inPhase(ctx context.Context, phase string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("%s phase ran past its deadline: %w", phase, err)
	}
	return fmt.Errorf("%s phase: %w", phase, err)
}

// commander readies what sends commands: as an operator when the server
// has auth (its publishes are checked against the operator's permissions,
// as a SmartServer's or an administrator's are), else on the bench's
// connection.
func (b *run) commander(ctx context.Context) error {
	nc := b.nc
	if b.operatorCreds != "" {
		var err error
		if nc, err = connect(b.nc.ConnectedUrl(), b.operatorCreds); err != nil {
			return err
		}
		b.closers = append(b.closers, nc.Close)
	}
	var err error
	if b.client, err = client.New(ctx, nc, "bench"); err != nil {
		return err
	}
	b.pub, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncWindow),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { b.pubFailed.Add(1) }))
	return err
}

// profile runs f under the CPU profilers asked for: this process's and
// the NATS server process's.
func (b *run) profile(f func() error) error {
	if b.cfg.NATSCPUProfile != "" {
		if err := b.natsProfile(b.cfg.NATSCPUProfile); err != nil {
			return fmt.Errorf("NATS server CPU profile: %w", err)
		}
		defer func() { _ = b.natsProfile("") }()
	}
	if b.cfg.CPUProfile == nil {
		return f()
	}
	if err := pprof.StartCPUProfile(b.cfg.CPUProfile); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return f()
}
