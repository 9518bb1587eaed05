package main

import (
	"fmt"
	"os"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

func (a *app) serveCmd() *cobra.Command {
	var cfg ServeConfig
	var level, memLimit, httpAddr, metricsAddr string
	var gcPercent int
	var joinNATS bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run licensebus: embedded JetStream (or --nats), handlers, projections, query API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := zerolog.ParseLevel(level)
			if err != nil {
				return usageError{err}
			}
			var w = zerolog.New(a.stderr)
			if f, ok := a.stderr.(*os.File); ok && isTerminal(f) {
				w = zerolog.New(zerolog.ConsoleWriter{Out: a.stderr, TimeFormat: time.TimeOnly})
			}
			cfg.Logger = w.Level(lvl).With().Timestamp().Logger()
			// --nats joins an existing NATS; without it we embed one.
			// NATS_URL joins too, unless --listen or --data ask for the
			// embedded server: an explicit flag wins over the environment.
			if err := checkServeFlags(cmd, &cfg); err != nil {
				return err
			}
			embedFlags := cmd.Flags().Changed("listen") || cmd.Flags().Changed("data")
			joinNATS = cmd.Flags().Changed("nats") || a.getenv("NATS_URL") != "" && !embedFlags
			rs, err := setRuntime(memLimit, gcPercent)
			if err != nil {
				return err
			}
			cfg.Logger.Info().Int64("memory_limit_bytes", rs.limit).Str("memory_limit_from", rs.from).
				Int64("memory_available_bytes", rs.available).Str("gc", rs.gcLog()).Msg("runtime")
			rs.pace(cmd.Context())
			if joinNATS {
				cfg.NatsURL = a.natsURL
			} else if a.getenv("NATS_URL") != "" {
				cfg.Logger.Info().Str("nats_url", a.getenv("NATS_URL")).Msg("NATS_URL ignored: --listen or --data run the embedded server")
			}
			if joinNATS {
				if cfg.NoAuth {
					return usageError{fmt.Errorf("--no-auth is for the embedded server; an external NATS has its own auth (--creds gives serve's identity there)")}
				}
				cfg.Creds = a.creds
				cfg.Logger.Info().Str("nats", cfg.NatsURL).Bool("from_env", !cmd.Flags().Changed("nats")).Msg("joining an existing NATS instead of embedding one")
			}
			obs, err := a.startObserving(cmd.Context(), &cfg, httpAddr, metricsAddr)
			if err != nil {
				return err
			}
			defer obs.close()
			s, err := StartServer(cmd.Context(), cfg)
			if err != nil {
				if joinNATS && !cmd.Flags().Changed("nats") {
					return fmt.Errorf("%w (serve joins the NATS in NATS_URL=%s; unset NATS_URL to run the embedded server)", err, cfg.NatsURL)
				}
				return err
			}
			if err := obs.serving(s); err != nil {
				s.Close()
				return err
			}
			<-cmd.Context().Done()
			cfg.Logger.Info().Msg("shutting down")
			s.Close()
			return s.Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "licensebus-data", "data directory of the embedded JetStream file store")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:4222", "host:port the embedded NATS server listens on")
	f.IntVar(&cfg.Workers, "workers", 16, "handler workers per consumer")
	f.BoolVar(&cfg.NoAuth, "no-auth", false, "run the embedded NATS server without auth, open to anyone who reaches it (development only)")
	f.StringVar(&cfg.Name, "name", elect.DefaultNode(), "this node's name in a cluster: who runs each singleton job (cluster status)")
	f.IntVar(&cfg.Replicas, "replicas", 0, "replicas of the streams and buckets; scales existing ones up or down (default: 3 on a NATS cluster of 3 or more servers, else 1, never scaling down)")
	f.StringArrayVar(&cfg.SigningKeys, "signing-key", nil, "Ed25519 key file (PKCS#8 PEM, mode 0600) that signs license grants, shared by every node of a cluster; again for older keys that keep verifying (default: <data>/signing, created on first start)")
	f.Float64Var(&cfg.ProvisionRate, "provision-rate", 200, "reactive provisioning: devices per second per SmartServer")
	f.DurationVar(&cfg.Horizon, "horizon", events.DefaultHorizon, "how long a command id is remembered: a repeat within it gets the first outcome; the outcomes bucket keeps outcomes that long")
	f.StringVar(&level, "log-level", "info", "log level: trace, debug, info, warn, error")
	f.StringVar(&httpAddr, "http", defaultHTTPAddr, `host:port of the HTTP listener: the web console and /api/v1, /metrics, /healthz, /readyz; "" for none`)
	f.StringVar(&metricsAddr, "metrics-listen", "", "host:port of a listener of /metrics, /healthz and /readyz alone (default none)")
	f.Uint64Var(&cfg.Telemetry.ReadyMaxLag, "ready-max-lag", DefaultReadyMaxLag, "events a job may trail the event stream while /readyz says ready")
	f.StringVar(&memLimit, "memory-limit", "", `soft memory limit of the process, e.g. 900MiB, or "none": the Go runtime collects harder near it (default: GOMEMLIMIT, else 3/4 of the cgroup's memory limit, else 1/2 of the machine's memory)`)
	f.IntVar(&gcPercent, "gc-percent", 0, "heap growth between collections in percent, as GOGC; with --memory-limit, 400 collects mostly near the limit (default: GOGC, else paced: 256 MiB of headroom or 40 % of the live heap, whichever is more)")
	return cmd
}

// checkServeFlags refuses serve flags that contradict each other or name
// nothing valid.
func checkServeFlags(cmd *cobra.Command, cfg *ServeConfig) error {
	f := cmd.Flags()
	if f.Changed("nats") && (f.Changed("listen") || f.Changed("data")) {
		return usageError{fmt.Errorf("--listen and --data are for the embedded NATS server; --nats joins another one")}
	}
	if !elect.ValidNode(cfg.Name) {
		return usageError{fmt.Errorf("--name %q: use 1-64 letters, digits, '-' or '_'", cfg.Name)}
	}
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return usageError{fmt.Errorf("--replicas %d: JetStream takes 1 to 5", cfg.Replicas)}
	}
	return nil
}
