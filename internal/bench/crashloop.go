package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CrashLoopConfig sizes a crash loop.
type CrashLoopConfig struct {
	// Exe is the licensebus program, run as `serve` with its embedded
	// NATS server.
	Exe string
	// Cycles of load, kill -9 and restart; default 100.
	Cycles int
	// Load is how long each cycle sends before the kill; default 1s.
	Load time.Duration
	// Rate is the activations sent per second; default 40.
	Rate     float64
	Progress io.Writer
	Log      io.Writer
}

// CrashLoopResult is what a crash loop measured.
type CrashLoopResult struct {
	Cycles        int `json:"cycles"`
	AckedCommands int `json:"acked_commands"`
	// LostCommands were acknowledged by JetStream and have no outcome at
	// the end.
	LostCommands       int     `json:"lost_commands"`
	DoubleEffects      int     `json:"double_effects"`
	LicensesBoundTwice int     `json:"licenses_bound_twice"`
	EventsWrittenTwice int     `json:"events_written_twice"`
	AuditEntriesTwice  int     `json:"audit_entries_twice"`
	AuditIntact        bool    `json:"audit_intact"`
	ViewsEqualRebuild  bool    `json:"views_equal_rebuild"`
	ViewsDiffering     int     `json:"views_differing"`
	RestartMeanS       float64 `json:"restart_mean_s"` // from the kill to the restarted node answering again
	RestartMaxS        float64 `json:"restart_max_s"`
	Cores              int     `json:"cores"`
	LoadAverage        string  `json:"load_average"`
	TotalSeconds       float64 `json:"total_seconds"`
}

// CrashLoop runs one licensebus node with its embedded NATS server as a
// process, and N times sends activations for a while, kills it with
// SIGKILL in the middle of them and starts it again; then it counts what
// JetStream acknowledged and what came of it.
func CrashLoop(ctx context.Context, cfg CrashLoopConfig) (*CrashLoopResult, error) {
	if cfg.Cycles <= 0 {
		cfg.Cycles = 100
	}
	if cfg.Load <= 0 {
		cfg.Load = time.Second
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 40
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "crash-loop: "+format+"\n", args...)
		}
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "licensebus-crashloop-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	url := "nats://" + addr
	var node *proc
	startNode := func() error {
		p, err := startProc("solo", []string{cfg.Exe, "serve", "--data", filepath.Join(dir, "data"), "--listen", addr, "--name", "solo",
			"--http", "", "--log-level", "warn"}, childEnv(), logw)
		if err != nil {
			return err
		}
		if err := p.run(ctx, nil); err != nil {
			return err
		}
		node = p
		return nil
	}
	defer func() {
		if node != nil {
			node.stop()
		}
	}()
	if err := startNode(); err != nil {
		return nil, err
	}
	// serve runs its embedded server with auth, as by default, and writes
	// its operator's creds file once its streams are ready: the bench's
	// connection and CLI runs use it, as a user's would.
	creds := filepath.Join(dir, "data", "admin.creds")
	opts, err := waitCreds(ctx, creds, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(opts, nats.Name("licensebus bench crash-loop"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...) // the kills are the point: no noise about them
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	serving := func() error {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			c, err := client.New(ctx, nc, "bench")
			if err == nil {
				qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err = c.Query(qctx, client.QueryStatus, client.Params{}, nil)
				cancel()
				if err == nil {
					return nil
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("licensebus did not answer within 2 minutes: %w", err)
			}
			sleep(ctx, 50*time.Millisecond)
		}
	}
	if err := serving(); err != nil {
		return nil, err
	}
	c, err := client.New(ctx, nc, "bench")
	if err != nil {
		return nil, err
	}
	perCycle := int(cfg.Rate*cfg.Load.Seconds()) + 1
	n := perCycle * cfg.Cycles
	progress("preparing 50 SmartServers and %d licenses", n)
	log, stopWatch, err := watchOutcomes(ctx, js)
	if err != nil {
		return nil, err
	}
	servers, lids, err := prepareFleet(ctx, c, log, "CRASH", 50, n)
	stopWatch()
	if err != nil {
		return nil, err
	}
	res := &CrashLoopResult{Cycles: cfg.Cycles, Cores: runtime.NumCPU()}
	var acked []string
	var restarts time.Duration
	for i := range cfg.Cycles {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l := startLoad(ctx, c, cfg.Rate, servers, lids[i*perCycle:(i+1)*perCycle])
		sleep(ctx, cfg.Load)
		node.kill()
		killed := time.Now()
		if err := startNode(); err != nil {
			return nil, err
		}
		if err := serving(); err != nil {
			return nil, err
		}
		took := time.Since(killed)
		restarts += took
		res.RestartMaxS = max(res.RestartMaxS, took.Seconds())
		acked = append(acked, l.stop()...)
		if (i+1)%10 == 0 {
			progress("%d cycles, %d activations acknowledged", i+1, len(acked))
		}
	}
	res.RestartMeanS = restarts.Seconds() / float64(cfg.Cycles)
	res.AckedCommands = len(acked)
	progress("waiting for the outcome of %d acknowledged activations", len(acked))
	log, stopWatch, err = watchOutcomes(ctx, js)
	if err != nil {
		return nil, err
	}
	res.LostCommands = len(log.wait(ctx, acked, 2*time.Minute))
	stopWatch()
	f := &failover{js: js, urls: url, creds: creds, cfg: FailoverConfig{Exe: cfg.Exe, Progress: cfg.Progress}, logw: logw}
	if err := f.settle(ctx); err != nil {
		return nil, err
	}
	if err := f.check(ctx, &res.LicensesBoundTwice, &res.EventsWrittenTwice, &res.AuditEntriesTwice, &res.AuditIntact, &res.ViewsEqualRebuild); err != nil {
		return nil, err
	}
	res.DoubleEffects = res.LicensesBoundTwice + res.EventsWrittenTwice + res.AuditEntriesTwice
	res.ViewsDiffering = f.differing
	if res.LostCommands > 0 {
		progress("%d acknowledged activations have no outcome", res.LostCommands)
	}
	res.LoadAverage = loadAverage()
	res.TotalSeconds = time.Since(start).Seconds()
	return res, nil
}

// waitCreds waits until the creds file at path exists and holds whole
// credentials (serve writes it once it has started), and returns the
// options that connect with them.
func waitCreds(ctx context.Context, path string, d time.Duration) ([]nats.Option, error) {
	deadline := time.Now().Add(d)
	for {
		opts, err := credsOptions(path)
		if err == nil {
			return opts, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("no operator credentials from serve within %s: %w", d, err)
		}
		sleep(ctx, 100*time.Millisecond)
	}
}
