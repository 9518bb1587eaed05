package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/bench"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// resilienceFlags are bench's failover and crash-loop modes.
type resilienceFlags struct {
	failover     bool
	crashLoop    int
	rate         float64
	phase        time.Duration
	serveCluster string
	childLog     string
}

func (r *resilienceFlags) flags(f *pflag.FlagSet) {
	f.BoolVar(&r.failover, "failover", false, "instead: a 3-server NATS cluster and 2 licensebus nodes, each a process; kill -9 the node running most jobs, then the NATS server leading the event stream, restart both, and count what was lost or done twice")
	f.IntVar(&r.crashLoop, "crash-loop", 0, "instead: one node with its embedded NATS, N cycles of activations, kill -9 and restart; count what was lost or done twice")
	f.Float64Var(&r.rate, "rate", 40, "--failover, --crash-loop: activations sent per second")
	f.DurationVar(&r.phase, "phase", 15*time.Second, "--failover: how long each phase lasts (before, node killed, NATS server killed, after); --crash-loop: the load of each cycle is a fifteenth of it")
	f.StringVar(&r.childLog, "children-log", "", "--failover, --crash-loop: append the processes' logs (stderr) to this file")
	f.StringVar(&r.serveCluster, "serve-cluster-node", "", "run only one NATS server of the failover bench's cluster, described by this JSON, until stdin closes")
	_ = f.MarkHidden("serve-cluster-node")
}

// resilience runs the failover or crash-loop bench, or a server of the
// failover bench's cluster.
func (a *app) resilience(cmd *cobra.Command, r resilienceFlags) error {
	if r.serveCluster != "" {
		var spec bench.ClusterNode
		if err := json.Unmarshal([]byte(r.serveCluster), &spec); err != nil {
			return usageError{fmt.Errorf("--serve-cluster-node: %w", err)}
		}
		return bench.ServeClusterNode(cmd.Context(), spec, a.stdin, a.stdout)
	}
	if r.failover && r.crashLoop > 0 {
		return usageError{errors.New("--failover and --crash-loop are two runs: give one")}
	}
	if r.rate <= 0 || r.phase <= 0 {
		return usageError{errors.New("--rate and --phase must be above 0")}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: cannot find this program to run the processes: %w", err)
	}
	var logw io.Writer
	if r.childLog != "" {
		lf, err := os.OpenFile(r.childLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer lf.Close()
		logw = lf
	}
	f3 := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	if r.failover {
		res, err := bench.Failover(cmd.Context(), bench.FailoverConfig{Exe: exe, Rate: r.rate, Phase: r.phase, Progress: a.stderr, Log: logw})
		if err != nil {
			return err
		}
		rows := []table.Row{
			{"acknowledged activations", res.AckedCommands, ""},
			{"lost (acknowledged, no outcome)", res.LostCommands, ""},
			{"double effects (licenses bound twice + events twice + audit entries twice)", res.DoubleEffects, ""},
			{fmt.Sprintf("job failover after kill -9 of %s (%d jobs), max over jobs", res.KilledNode, res.JobsKilled), f3(res.JobFailoverS), "s"},
			{fmt.Sprintf("event stream failover after kill -9 of NATS server %s", res.KilledServer), f3(res.StreamFailoverS), "s"},
			{"audit trail intact", res.AuditIntact, ""},
			{"views equal a rebuild (entries that differ)", fmt.Sprintf("%v (%d)", res.ViewsEqualRebuild, res.ViewsDiffering), ""},
			{"activations: sent / before / node killed / NATS killed / after", fmt.Sprintf("%s / %s / %s / %s / %s", f1(res.RateSent), f1(res.RateBefore), f1(res.RateNodeKilled), f1(res.RateNATSKilled), f1(res.RateAfter)), "/s"},
			{fmt.Sprintf("run: R%d, %d cores, load %s, phases of %gs", res.Replicas, res.Cores, res.LoadAverage, res.PhaseS), f1(res.TotalSeconds), "s"},
		}
		return a.emit(res, table.Row{"Figure", "Value", "Unit"}, rows)
	}
	res, err := bench.CrashLoop(cmd.Context(), bench.CrashLoopConfig{Exe: exe, Cycles: r.crashLoop, Rate: r.rate, Load: r.phase / 15, Progress: a.stderr, Log: logw})
	if err != nil {
		return err
	}
	rows := []table.Row{
		{"cycles of load, kill -9, restart", res.Cycles, ""},
		{"acknowledged activations", res.AckedCommands, ""},
		{"lost (acknowledged, no outcome)", res.LostCommands, ""},
		{"double effects (licenses bound twice + events twice + audit entries twice)", res.DoubleEffects, ""},
		{"audit trail intact", res.AuditIntact, ""},
		{"views equal a rebuild (entries that differ)", fmt.Sprintf("%v (%d)", res.ViewsEqualRebuild, res.ViewsDiffering), ""},
		{"restart until serving: mean / max", f3(res.RestartMeanS) + " / " + f3(res.RestartMaxS), "s"},
		{fmt.Sprintf("run: %d cores, load %s", res.Cores, res.LoadAverage), f1(res.TotalSeconds), "s"},
	}
	return a.emit(res, table.Row{"Figure", "Value", "Unit"}, rows)
}
