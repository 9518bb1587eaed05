package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/bench"
	"github.com/licensebus/licensebus/internal/console"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func (a *app) benchCmd() *cobra.Command {
	var quick, tiny, shared, serveOpen bool
	var gcPercent int
	var fleet, cpuprofile, natsprofile, natsmemprofile, memprofile, fleetprofile, rebuildprofile, serveNATS, memLimit string
	var probeNATS, probeCreds string
	var res resilienceFlags
	var soak bench.Soak
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure raw JetStream and licensebus side by side on one NATS server",
		Long: `Starts an embedded NATS server with a file store in a temporary directory, measures raw
JetStream on a stream of its own, then runs licensebus on the same server and measures
appends, activations end to end, latency at half load, replay, rebuild and a fleet
rollout. The NATS server runs in a process of its own (--shared-process: in this one),
so the memory of each is reported apart. It runs with auth, as serve does by default,
the commands coming from an operator; the same burst of activations on fresh servers
with and without auth, alternating, gives auth_overhead (1 − with ÷ without). Progress
goes to stderr; the figures to
stdout. The default run takes about a minute on 2 cores; --quick about 15 seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serveNATS != "" {
				// The collector as serve's process runs it, with the
				// limit the parent passed in GOMEMLIMIT.
				rs, err := setRuntime("", 0)
				if err != nil {
					return err
				}
				rs.pace(cmd.Context())
				return bench.ServeChild(cmd.Context(), serveNATS, !serveOpen, a.stdin, a.stdout)
			}
			if probeNATS != "" {
				return bench.RunProbe(cmd.Context(), probeNATS, probeCreds, a.stdin, a.stdout)
			}
			if res.serveCluster != "" || res.failover || res.crashLoop > 0 {
				return a.resilience(cmd, res)
			}
			if shared && natsprofile != "" {
				return usageError{errors.New("--nats-cpuprofile needs the NATS server in a process of its own; with --shared-process, --cpuprofile covers both")}
			}
			if shared && natsmemprofile != "" {
				return usageError{errors.New("--nats-memprofile needs the NATS server in a process of its own; with --shared-process, --memprofile covers both")}
			}
			if cmd.Flags().Changed("soak") && soak.Activations < 4 {
				return usageError{fmt.Errorf("--soak %d: want at least 4 activations (a figure at each quarter)", soak.Activations)}
			}
			if soak.Pool < 1 {
				return usageError{fmt.Errorf("--soak-pool %d: want at least 1 SmartServer", soak.Pool)}
			}
			rs, err := setRuntime(memLimit, gcPercent)
			if err != nil {
				return err
			}
			rs.pace(cmd.Context())
			limit, gc := rs.limit, rs.gc
			if soak.Activations > 0 {
				if memprofile != "" {
					f, err := os.Create(memprofile)
					if err != nil {
						return err
					}
					defer f.Close()
					soak.MemProfile = f
				}
				return a.soak(cmd, soak, limit, shared)
			}
			cfg := bench.Full()
			switch {
			case tiny:
				cfg = bench.Tiny()
			case quick:
				cfg = bench.Quick()
			}
			if !tiny || cmd.Flags().Changed("fleet") {
				var err error
				if cfg.FleetTargets, cfg.FleetDevices, err = parseFleet(fleet); err != nil {
					return usageError{err}
				}
			}
			cfg.Progress = a.stderr
			cfg.NATSCPUProfile, cfg.NATSMemProfile = natsprofile, natsmemprofile
			// The server's process writes these; a path it cannot write is
			// refused here, not found out in its log after the run.
			for _, p := range []string{natsprofile, natsmemprofile} {
				if p == "" {
					continue
				}
				f, err := os.Create(p)
				if err != nil {
					return err
				}
				f.Close()
			}
			for _, p := range []struct {
				path string
				dst  *io.Writer
			}{{cpuprofile, &cfg.CPUProfile}, {fleetprofile, &cfg.FleetCPUProfile}, {rebuildprofile, &cfg.RebuildCPUProfile}, {memprofile, &cfg.MemProfile}} {
				if p.path == "" {
					continue
				}
				f, err := os.Create(p.path)
				if err != nil {
					return err
				}
				defer f.Close()
				*p.dst = f
			}
			if !shared {
				server, err := a.natsChild(limit)
				if err != nil {
					return err
				}
				cfg.Server = server
			}
			if cfg.Probe, err = a.probeChild(); err != nil {
				return err
			}
			r, err := bench.Run(cmd.Context(), cfg, startBenchProduct)
			if err != nil {
				return err
			}
			r.MemoryLimitMB, r.GCPercent, r.GC = float64(limit)/(1<<20), gc, rs.gcLog()
			return a.emit(r, table.Row{"Side", "Figure", "Value", "Unit"}, benchRows(r))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&quick, "quick", false, "small sizes: the whole run in under a minute")
	f.BoolVar(&tiny, "tiny", false, "smallest sizes, for tests; the figures mean nothing")
	_ = f.MarkHidden("tiny")
	f.StringVar(&memLimit, "memory-limit", "", `soft memory limit of each process, as serve --memory-limit, or "none" (default: GOMEMLIMIT, else serve's default, for the NATS server too)`)
	f.IntVar(&gcPercent, "gc-percent", 0, "GOGC of the licensebus process, as serve --gc-percent (the NATS server process keeps serve's default pacing)")
	f.BoolVar(&shared, "shared-process", false, "run the NATS server inside the bench process, as serve without --nats does (memory figures then cover both)")
	f.StringVar(&serveNATS, "serve-nats", "", "run only the bench's NATS server, storing under this directory, until stdin closes")
	_ = f.MarkHidden("serve-nats")
	f.BoolVar(&serveOpen, strings.TrimPrefix(bench.OpenFlag, "--"), false, "with --serve-nats: without auth")
	_ = f.MarkHidden(strings.TrimPrefix(bench.OpenFlag, "--"))
	f.StringVar(&probeNATS, strings.TrimPrefix(bench.ProbeFlag, "--"), "", "run only the bench's probe of raw JetStream on the server at this URL, until stdin closes")
	_ = f.MarkHidden(strings.TrimPrefix(bench.ProbeFlag, "--"))
	f.StringVar(&probeCreds, strings.TrimPrefix(bench.ProbeCredsFlag, "--"), "", "with --probe-nats: the creds file")
	_ = f.MarkHidden(strings.TrimPrefix(bench.ProbeCredsFlag, "--"))
	f.StringVar(&fleet, "fleet", "200,10", "fleet rollout size: SmartServers,devices per SmartServer")
	res.flags(f)
	f.IntVar(&soak.Activations, "soak", 0, "instead: N activations, each followed by its transfer back, at half the measured rate over a pool of SmartServers; the memory of both processes at 25, 50, 75 and 100 %")
	f.IntVar(&soak.Pool, "soak-pool", 2000, "--soak: SmartServers (one license each) the activations cycle over")
	f.DurationVar(&soak.Horizon, "soak-horizon", 2*time.Minute, "--soak: serve's --horizon during the soak, so that what it remembers reaches the plateau the default horizon reaches after a week")
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the activation phase to this file")
	f.StringVar(&natsprofile, "nats-cpuprofile", "", "write a CPU profile of the NATS server process over the activation phase to this file")
	f.StringVar(&natsmemprofile, "nats-memprofile", "", "write a heap profile of the NATS server process taken after the fleet run to this file")
	f.StringVar(&memprofile, "memprofile", "", "write a heap profile taken after the fleet run (with --soak: at its end) to this file")
	f.StringVar(&fleetprofile, "fleet-cpuprofile", "", "write a CPU profile of the fleet rollout to this file")
	f.StringVar(&rebuildprofile, "rebuild-cpuprofile", "", "write a CPU profile of the projections rebuild to this file")
	return cmd
}

// childEnv marks the bench's NATS server process, so that a test binary
// standing in for licensebus runs the CLI rather than its tests.
const childEnv = "LICENSEBUS_BENCH_CHILD"

// natsChild runs the bench's NATS server in a process of its own: this
// program again, with the hidden --serve-nats flag.
func (a *app) natsChild(memLimit int64) (bench.ServerFunc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: cannot find this program to run the NATS server: %w", err)
	}
	// The server is raw JetStream: it runs with the collector's policy of
	// serve's process (paced, as the embedded server is in serve), and
	// with the bench's memory limit when one is given; --gc-percent is the
	// licensebus process's only.
	env := benchChildEnv("GOGC=")
	if memLimit > 0 {
		env = append(benchChildEnv("GOGC=", "GOMEMLIMIT="), fmt.Sprintf("GOMEMLIMIT=%dB", memLimit))
	}
	return bench.ChildProcess([]string{exe, "bench", "--serve-nats"}, env), nil
}

// benchChildEnv is the environment of a process the bench runs of this
// program: marked as such (childEnv), without NATS_URL (its flags name the
// server) and without the variables that start with drop.
func benchChildEnv(drop ...string) []string {
	env := []string{childEnv + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_URL=") && !strings.HasPrefix(kv, childEnv+"=") &&
			!slices.ContainsFunc(drop, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return env
}

// probeChild runs the bench's probe of raw JetStream in a process of its
// own: this program again, with the hidden --probe-nats flag. Its heap is a
// few megabytes, so what it measures is the server and the shared cores.
func (a *app) probeChild() (bench.ProbeFunc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: cannot find this program to run the probe: %w", err)
	}
	return bench.ChildProbe([]string{exe, "bench"}, benchChildEnv("NATS_CREDS=")), nil
}

// startBenchProduct runs licensebus joined to the bench's NATS server, as
// `serve --nats` would. It logs at serve's default level into io.Discard:
// formatting the log lines is part of the product's cost, writing them
// somewhere is not.
func startBenchProduct(ctx context.Context, url, creds string) (*bench.Product, error) {
	return benchProduct(0)(ctx, url, creds)
}

// benchProduct is startBenchProduct with serve's --horizon (0: its
// default).
func benchProduct(horizon time.Duration) bench.StartFunc {
	return func(ctx context.Context, url, creds string) (*bench.Product, error) {
		return startBenchProductHorizon(ctx, url, creds, horizon)
	}
}

func startBenchProductHorizon(ctx context.Context, url, creds string, horizon time.Duration) (*bench.Product, error) {
	// A signing key of its own, for the bench's one process.
	dir, err := os.MkdirTemp("", "licensebus-bench-")
	if err != nil {
		return nil, err
	}
	// An OpenTelemetry SDK without an exporter: spans are made, none sent;
	// off but in the bench's tracing rounds.
	tp := sdktrace.NewTracerProvider()
	s, err := StartServer(ctx, ServeConfig{NatsURL: url, Creds: creds, DataDir: dir, Logger: zerolog.New(io.Discard).Level(zerolog.InfoLevel), Horizon: horizon,
		Telemetry: TelemetryConfig{TracerProvider: tp}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.obs.tracer.SetOn(false)
	// The console as a signed-in person uses it, on a connection of its
	// own (the service's: what a page costs does not depend on who asks).
	nc, _, err := s.connect(url, "console")
	if err != nil {
		s.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	web, err := console.New(console.Config{Shared: nc, Logger: zerolog.Nop()})
	if err != nil {
		s.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return &bench.Product{Licensing: s.lic, Devices: s.dev, Projections: s.runner, Err: s.Err, Console: web,
		Close: func() { web.Close(); s.Close(); os.RemoveAll(dir) }, Tracing: s.obs.tracer.SetOn}, nil
}

func parseFleet(s string) (targets, devices int, err error) {
	t, d, ok := strings.Cut(s, ",")
	if ok {
		targets, err = strconv.Atoi(strings.TrimSpace(t))
		if err == nil {
			devices, err = strconv.Atoi(strings.TrimSpace(d))
		}
	}
	if !ok || err != nil || targets < 1 || devices < 1 {
		return 0, 0, fmt.Errorf("--fleet must be N,DEVICES with both at least 1, not %q", s)
	}
	return targets, devices, nil
}

func benchRows(r *bench.Result) []table.Row {
	rate := func(v float64) string { return thousands(v) }
	f3 := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	rows := []table.Row{
		{"raw", fmt.Sprintf("async append (%s × %d B, msg id, window 4096)", thousands(float64(r.Messages)), r.PayloadBytes), rate(r.RawAppend), "msgs/s"},
		{"raw", "sync publish p50", f3(r.RawSyncP50), "ms"},
		{"raw", "sync publish p99", f3(r.RawSyncP99), "ms"},
		{"raw", "expected-sequence sync append, many goroutines", rate(r.RawCASSync), "msgs/s"},
		{"raw", fmt.Sprintf("replay of the event stream (%s)", thousands(float64(r.ReplayEvents))), rate(r.RawReplay), "msgs/s"},
		{"product", "append (bus.Appender, many goroutines)", rate(r.AppendRate), "events/s"},
		{"product", fmt.Sprintf("activations end to end (%s)", thousands(float64(r.Activations))), rate(r.ActivationRate), "/s"},
		{"product", "activations, tracing off / on (spans, no exporter)", rate(r.ActivationRateUntraced) + " / " + rate(r.ActivationRateTraced), "/s"},
		{"product", "tracing overhead: rate / CPU per activation", strconv.FormatFloat(100*r.TracingOverhead, 'f', 1, 64) + " / " +
			strconv.FormatFloat(100*r.TracingCPUOverhead, 'f', 1, 64), "%"},
		{"product", "JetStream messages per activation", f1(r.MsgsPerAct), "msgs"},
		{"product", "JetStream messages written", rate(r.ProductMsgs), "msgs/s"},
		{"product", fmt.Sprintf("e2e latency p50 at %s/s", thousands(r.E2EOffered)), f3(r.E2EP50), "ms"},
		{"product", "e2e latency p99, p99.9", f3(r.E2EP99) + ", " + f3(r.E2EP999), "ms"},
	}
	for _, h := range r.E2EHops {
		rows = append(rows, table.Row{"by hop", h.Name + ": p50 / p99 / p99.9", f3(h.P50MS) + " / " + f3(h.P99MS) + " / " + f3(h.P999MS), "ms"})
	}
	if p := r.Probe; p != nil {
		rows = append(rows, table.Row{"raw", fmt.Sprintf("beside the e2e phase, publish to ack (%d/s, own process): p50 / p99 / p99.9", bench.ProbeRate),
			f3(p.P50MS) + " / " + f3(p.P99MS) + " / " + f3(p.P999MS), "ms"})
	}
	if r.NATSProcess != "shared" && r.NATSActCPU > 0 {
		rows = append(rows, []table.Row{
			{"gc", "at half load: cycles, NATS server / licensebus process", fmt.Sprintf("%d / %d", r.NATSE2EGCCycles, r.E2EGCCycles), ""},
			{"gc", "at half load: collector CPU, NATS server / licensebus process", f2(r.NATSE2EGCCores) + " / " + f2(r.E2EGCCores), "cores"},
			{"gc", "activation burst: allocated per activation, NATS server / licensebus process", f1(r.NATSActAllocKB) + " / " + f1(r.ActAllocKB), "KB"},
			{"cpu", "raw async append: NATS server / publishing process, per message", f2(r.NATSRawCPU) + " / " + f2(r.RawCPU), "µs"},
			{"cpu", "activation burst: NATS server / licensebus process, per activation", rate(r.NATSActCPU) + " / " + rate(r.ActCPU), "µs"},
			{"cpu", "NATS server CPU per product message ÷ per raw message", f2(r.NATSMsgCost), ""},
			{"cpu", "raw replay: NATS server / reading process, per message", f2(r.NATSReplayCPU) + " / " + f2(r.ReplayCPU), "µs"},
			{"cpu", "rebuild: NATS server / licensebus process, per event", f2(r.NATSRebuildCPU) + " / " + f2(r.RebuildCPU), "µs"},
		}...)
	} else if r.ActCPU > 0 {
		rows = append(rows, []table.Row{
			{"gc", "at half load: cycles, one process", strconv.FormatUint(r.E2EGCCycles, 10), ""},
			{"gc", "at half load: collector CPU, one process", f2(r.E2EGCCores), "cores"},
			{"gc", "activation burst: allocated per activation, one process", f1(r.ActAllocKB), "KB"},
			{"cpu", "activation burst: licensebus + NATS server process, per activation", rate(r.ActCPU), "µs"}}...)
	}
	rows = append(rows, []table.Row{
		{"product", "projections rebuild", rate(r.Rebuild), "events/s"},
		{"ratio", "efficiency: product msgs/s ÷ raw async", f3(r.Efficiency), ""},
		{"ratio", "rebuild ÷ raw replay", f3(r.RebuildRatio), ""},
		{"auth", fmt.Sprintf("activations (%s) with auth / without, medians of fresh servers", thousands(float64(r.AuthActivations))), rate(r.ActivationsAuthOn) + " / " + rate(r.ActivationsAuthOff), "/s"},
		{"auth", "auth overhead: 1 − with ÷ without", f3(r.AuthOverhead), ""},
		{"auth", "CPU of both processes per activation, with auth / without", rate(r.AuthCPUOn) + " / " + rate(r.AuthCPUOff), "µs"},
		{"auth", "auth CPU overhead: with ÷ without − 1", f3(r.AuthCPUOverhead), ""},
		{"fleet", fmt.Sprintf("rollout of %d SmartServers × %d devices: to green", r.FleetTargets, r.FleetDevices), f3(r.FleetSecondsToGreen), "s"},
		{"fleet", "rollout rate", rate(r.FleetTargetsPerMin), "SmartServers/min"},
		{"console", fmt.Sprintf("a SmartServer's page with %d SmartServers loaded: p99 server time", r.FleetTargets), f3(r.ConsoleP99MS), "ms"},
	}...)
	memory := []table.Row{
		{"memory", "licensebus + NATS server, one process: peak RSS", f1(r.PeakRSSMB), "MiB"},
		{"memory", "licensebus + NATS server, one process: RSS after fleet", f1(r.RSSAfterFleetMB), "MiB"},
	}
	if r.NATSProcess != "shared" {
		memory = []table.Row{
			{"memory", "licensebus process: peak RSS", f1(r.PeakRSSMB), "MiB"},
			{"memory", "licensebus process: RSS after fleet", f1(r.RSSAfterFleetMB), "MiB"},
			{"memory", "NATS server process: peak RSS", f1(r.NATSPeakRSSMB), "MiB"},
			{"memory", "NATS server process: RSS after fleet", f1(r.NATSRSSAfterFleetMB), "MiB"},
		}
	}
	rows = append(rows, memory...)
	return append(rows,
		table.Row{"run", fmt.Sprintf("%s mode, %s, nats-server %s, %d cores, sync_interval %gs, memory limit %s, GC %s", r.Mode, r.GoVersion, r.ServerVersion, r.Cores, r.SyncIntervalS, limitText(r.MemoryLimitMB), r.GC), f1(r.TotalSeconds), "s"},
		table.Row{"run", "stored bytes per raw message / per product event", fmt.Sprintf("%.0f / %.0f", r.RawMsgBytes, r.EventMsgBytes), "B"},
	)
}

func limitText(mb float64) string {
	if mb == 0 {
		return "none"
	}
	return strconv.FormatFloat(mb, 'f', 0, 64) + " MiB"
}

// thousands formats v rounded, with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// soak runs bench --soak: the NATS server in a process of its own unless
// --shared-process, with the same memory limit as this one.
func (a *app) soak(cmd *cobra.Command, cfg bench.Soak, limit int64, shared bool) error {
	cfg.Progress = a.stderr
	if !shared {
		server, err := a.natsChild(limit)
		if err != nil {
			return err
		}
		cfg.Server = server
	}
	r, err := bench.RunSoak(cmd.Context(), cfg, benchProduct(cfg.Horizon))
	if err != nil {
		return err
	}
	mb := func(v []float64) string {
		var parts []string
		for _, x := range v {
			parts = append(parts, strconv.FormatFloat(x, 'f', 0, 64))
		}
		return strings.Join(parts, " / ")
	}
	return a.emit(r, table.Row{"Figure", "Value", "Unit"}, []table.Row{
		{"activations (each with its transfer)", r.Activations, ""},
		{"pool", r.Pool, "SmartServers"},
		{"horizon", r.HorizonS, "s"},
		{"measured rate", r.MeasuredRate, "activations/s"},
		{"offered, achieved", fmt.Sprintf("%.0f, %.0f", r.OfferedRate, r.AchievedRate), "commands/s"},
		{"rejected", r.Rejected, "commands"},
		{"licensebus RSS at 25/50/75/100 %", mb(r.SoakRSSMB), "MB"},
		{"licensebus live heap at 25/50/75/100 %", mb(r.SoakHeapMB), "MB"},
		{"NATS RSS at 25/50/75/100 %", mb(r.NATSSoakRSSMB), "MB"},
		{"growth 50 → 100 %: licensebus RSS, live heap, NATS RSS", fmt.Sprintf("%+.1f %%, %+.1f %%, %+.1f %%", 100*r.Growth, 100*r.HeapGrowth, 100*r.NATSGrowth), ""},
		{"memory limit", limitText(r.MemoryLimitMB), ""},
		{"total", r.TotalSeconds, "s"},
	})
}
