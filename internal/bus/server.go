// Package bus is the JetStream plumbing licensebus stands on: the embedded
// server, stream setup, expected-sequence appends, folds over the event
// stream, partitioned command consumers and the dead-letter stream.
package bus

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// ServerConfig configures an embedded nats-server.
type ServerConfig struct {
	// StoreDir holds the JetStream file store. It is required.
	StoreDir string
	// Listen is host:port for clients; port -1 picks a free port. Empty
	// means no TCP listener: in-process connections only.
	Listen string
	// SyncInterval bounds what an OS crash can lose; 0 means 1s, which costs
	// nothing measurable against the 2m server default (see README).
	SyncInterval time.Duration
	Logger       zerolog.Logger
	// Configure, if set, changes the options last: serve puts the server
	// in operator mode with it (internal/auth).
	Configure func(*server.Options)
	// ServerLogger, if set, takes the server's log lines instead of Logger
	// (serve counts the refusals in them).
	ServerLogger server.Logger
}

// StartServer starts an embedded JetStream server and waits until it takes
// connections. The caller must Shutdown it.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("embedded server: store dir is required")
	}
	opts := &server.Options{
		ServerName:   "licensebus",
		JetStream:    true,
		StoreDir:     cfg.StoreDir,
		NoSigs:       true, // otherwise SIGINT calls os.Exit and skips our shutdown
		SyncInterval: cfg.SyncInterval,
		MaxPayload:   8 << 20,
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = time.Second
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded server: listen %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded server: listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
	}
	if cfg.Configure != nil {
		cfg.Configure(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	var log server.Logger = serverLogger{cfg.Logger.With().Str("component", "nats-server").Logger()}
	if cfg.ServerLogger != nil {
		log = cfg.ServerLogger
	}
	ns.SetLoggerV2(log, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded server: not ready after 30s (is %s in use?)", cfg.Listen)
	}
	return ns, nil
}

// serverLogger adapts zerolog to nats-server's Logger.
type serverLogger struct{ l zerolog.Logger }

func (s serverLogger) Noticef(f string, v ...any) { s.l.Info().Msgf(f, v...) }
func (s serverLogger) Warnf(f string, v ...any)   { s.l.Warn().Msgf(f, v...) }
func (s serverLogger) Fatalf(f string, v ...any)  { s.l.Error().Msgf(f, v...) }
func (s serverLogger) Errorf(f string, v ...any)  { s.l.Error().Msgf(f, v...) }
func (s serverLogger) Debugf(f string, v ...any)  { s.l.Debug().Msgf(f, v...) }
func (s serverLogger) Tracef(f string, v ...any)  { s.l.Trace().Msgf(f, v...) }
