package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func (a *app) rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Fleet-wide license rollouts in waves"}
	cmd.AddCommand(a.sends(a.rolloutStartCmd(events.RolloutActivate)), a.sends(a.rolloutStartCmd(events.RolloutTransfer)), a.rolloutStatusCmd(), a.rolloutListCmd(),
		a.sends(a.rolloutRefCmd("pause", "Stop starting targets; those in flight finish", events.PauseRolloutType)),
		a.sends(a.rolloutRefCmd("resume", "Go on with a paused rollout", events.ResumeRolloutType)),
		a.sends(a.rolloutRefCmd("cancel", "Stop a rollout for good; targets in flight finish", events.CancelRolloutType)),
		a.sends(a.rolloutRefCmd("retry-failed", "Run the failed targets of a finished rollout again", events.RetryFailedType)))
	return cmd
}

// rolloutFlags are the flags of `rollout start` and `rollout transfer`.
type rolloutFlags struct {
	targets, activate, waves, rate, abort string
	spec                                  events.RolloutSpec
	dryRun, wait                          bool
}

func (a *app) rolloutStartCmd(kind string) *cobra.Command {
	var f rolloutFlags
	use, short := "start --customer CID --targets targets.csv [flags]", "Start a rollout: set Customer IDs, activate licenses, turn on auto-provisioning"
	if kind == events.RolloutTransfer {
		use, short = "transfer --targets targets.csv [flags]", "Transfer all licenses of many SmartServers back to the cloud"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := f.build(kind)
			if err != nil {
				return usageError{err}
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if f.dryRun {
					var p rollout.Plan
					if err := c.Query(ctx, client.QueryRolloutPlan, client.Params{Spec: &spec}, &p); err != nil {
						return err
					}
					return a.printPlan(p)
				}
				cmdID, _ := a.commandIDs(1)
				// The rollout id is the correlation id of everything it does;
				// derived from the command id, a repeated command waits on
				// the same one and finds the first outcome.
				id := client.RolloutID(cmdID)
				s, err := a.send(ctx, c, events.StartRolloutType, &events.StartRollout{RolloutID: id, Spec: spec}, client.SendOptions{ID: cmdID, CorrelationID: id})
				if err != nil {
					return err
				}
				cmds := []sent{s}
				if err := a.await(ctx, c, cmds, cmdID); err != nil {
					return err
				}
				if !f.wait || cmds[0].Out.Status == "rejected" {
					return a.finish(ctx, c, cmds)
				}
				if a.output != "json" {
					fmt.Fprintf(a.stderr, "rollout %s started; Ctrl-C stops following it, not the rollout\n", id)
				}
				return a.followRollout(cmd.Context(), c, id, cmdID)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.targets, "targets", "", "CSV file with an install_code column (required)")
	fl.IntVar(&f.spec.WaveSize, "wave-size", 0, "targets per wave")
	fl.StringVar(&f.waves, "waves", "", "waves as cumulative percentages, e.g. 1%,10%,50%,100%")
	fl.IntVar(&f.spec.Concurrency, "concurrency", 50, "targets in flight at once")
	fl.StringVar(&f.rate, "rate", "", "targets started at most, e.g. 500/min or 10/s")
	fl.StringVar(&f.abort, "abort-when", "", "abort before the next wave, e.g. failed>5%,min=20")
	fl.IntVar(&f.spec.Retries, "retries", 3, "extra attempts for transient failures")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&f.wait, "wait", false, "follow the rollout until it ends")
	_ = cmd.MarkFlagRequired("targets")
	if kind == events.RolloutActivate {
		fl.StringVar(&f.spec.CustomerID, "customer", "", "customer whose license pool is used (required)")
		fl.BoolVar(&f.spec.SetCustomerID, "set-customer-id", false, "set each target's Customer ID first")
		fl.StringVar(&f.activate, "activate", "", "licenses per target, e.g. capacity:200,maintenance")
		fl.BoolVar(&f.spec.AutoProvision, "auto-provision", false, "turn reactive provisioning on for each target")
		_ = cmd.MarkFlagRequired("customer")
	}
	return cmd
}

// build turns the flags into a spec.
func (f *rolloutFlags) build(kind string) (events.RolloutSpec, error) {
	s := f.spec
	s.Kind = kind
	targets, err := readTargets(f.targets)
	if err != nil {
		return s, err
	}
	s.Targets = targets
	if f.activate != "" {
		for _, part := range strings.Split(f.activate, ",") {
			k, n, _ := strings.Cut(strings.TrimSpace(part), ":")
			w := events.LicenseWant{Kind: k}
			if n != "" {
				if w.Devices, err = strconv.Atoi(n); err != nil {
					return s, fmt.Errorf("--activate %q: %q is not a device count", f.activate, n)
				}
			}
			s.Activate = append(s.Activate, w)
		}
	}
	if f.waves != "" {
		if s.WaveSize > 0 {
			return s, errors.New("--waves and --wave-size exclude each other")
		}
		for _, p := range strings.Split(f.waves, ",") {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(p), "%"))
			if err != nil {
				return s, fmt.Errorf("--waves %q: %q is not a percentage", f.waves, p)
			}
			s.WavePercents = append(s.WavePercents, n)
		}
	}
	if f.rate != "" {
		if s.RatePerMin, err = parseRate(f.rate); err != nil {
			return s, err
		}
	}
	if f.abort != "" {
		if s.AbortPercent, s.AbortMin, err = parseAbort(f.abort); err != nil {
			return s, err
		}
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// readTargets reads the install_code column of a CSV file with a header.
func readTargets(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	col := -1
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), "install_code") {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("%s: no install_code column in the header %v", path, header)
	}
	var out []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if col < len(rec) && strings.TrimSpace(rec[col]) != "" {
			out = append(out, strings.TrimSpace(rec[col]))
		}
	}
}

// parseRate reads "500/min", "10/s" or "3000/h" as targets per minute.
func parseRate(s string) (int, error) {
	n, unit, ok := strings.Cut(s, "/")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v <= 0 {
		return 0, fmt.Errorf("--rate %q: want N/s, N/min or N/h", s)
	}
	switch unit {
	case "s", "sec":
		return v * 60, nil
	case "m", "min":
		return v, nil
	case "h", "hour":
		return max(1, v/60), nil
	}
	return 0, fmt.Errorf("--rate %q: unit must be s, min or h", s)
}

// parseAbort reads "failed>5%,min=20".
func parseAbort(s string) (float64, int, error) {
	bad := fmt.Errorf("--abort-when %q: want failed>P%%[,min=N]", s)
	cond, rest, _ := strings.Cut(s, ",")
	p, ok := strings.CutPrefix(strings.TrimSpace(cond), "failed>")
	if !ok {
		return 0, 0, bad
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(p, "%"), 64)
	if err != nil || pct <= 0 || pct > 100 {
		return 0, 0, bad
	}
	minN := 1
	if rest != "" {
		m, ok := strings.CutPrefix(strings.TrimSpace(rest), "min=")
		if minN, err = strconv.Atoi(m); !ok || err != nil || minN < 0 {
			return 0, 0, bad
		}
	}
	return pct, minN, nil
}

func (a *app) printPlan(p rollout.Plan) error {
	var rows []table.Row
	for _, w := range p.Waves {
		for _, t := range w.Targets {
			var ls []string
			for _, l := range t.Licenses {
				ls = append(ls, l.LicenseID+" ("+l.Label()+")")
			}
			what := strings.Join(ls, ", ")
			if p.Kind == events.RolloutTransfer && what != "" {
				what = "gives back " + what
			}
			if t.Refusal != "" {
				what = string(t.Refusal) + ": " + t.Message
			}
			rows = append(rows, table.Row{w.Wave + 1, t.InstallCode, what})
		}
	}
	if err := a.emit(p, table.Row{"Wave", "Install Code", "Licenses / Refusal"}, rows); err != nil {
		return err
	}
	if a.output != "json" {
		fmt.Fprintf(a.stdout, "dry run: %s in %s, %d ready, %d would be refused; nothing was changed\n", count(p.Targets, "target"), count(len(p.Waves), "wave"), p.Ready, p.Refused)
	}
	return nil
}

func (a *app) rolloutStatusCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status ROLLOUT_ID",
		Short: "Progress, per-wave and per-target state of a rollout",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if watch {
					return a.followRollout(cmd.Context(), c, args[0], "")
				}
				var d rollouts.Detail
				if err := c.Query(ctx, client.QueryRollout, client.Params{RolloutID: args[0]}, &d); err != nil {
					return err
				}
				return a.printRollout(d, "")
			})
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow with a progress bar until the rollout ends")
	return cmd
}

// printRollout prints a rollout's status (with the id of the command that
// started it, if this one did); once it ended with failed targets or
// aborted, it is an error that says how many failed (exit 1).
func (a *app) printRollout(d rollouts.Detail, cmdID string) error {
	if err := a.rolloutReport(d, cmdID); err != nil {
		return err
	}
	return rolloutFailed(d)
}

// rolloutFailed is the refusal of an ended rollout that failed, else nil.
func rolloutFailed(d rollouts.Detail) error {
	switch d.Status {
	case "completed", "aborted", "cancelled":
	default:
		return nil // still under way: nothing has failed for good
	}
	if d.Counts.Failed == 0 && d.Status != "aborted" {
		return nil
	}
	msg := fmt.Sprintf("rollout %s %s: %d of %s failed", d.RolloutID, d.Status, d.Counts.Failed, count(d.Counts.Total, "target"))
	if d.Counts.Skipped > 0 {
		msg += fmt.Sprintf(", %d skipped", d.Counts.Skipped)
	}
	if d.Abort != "" {
		msg += " (" + d.Abort + ")"
	}
	return refusedError{errors.New(msg)}
}

func (a *app) rolloutReport(d rollouts.Detail, cmdID string) error {
	switch {
	case a.output == "json" && cmdID != "":
		return a.emitWithID(cmdID, d)
	case a.output == "json":
		return a.emit(d, nil, nil)
	}
	fmt.Fprintf(a.stdout, "rollout %s: %s — %d succeeded, %d failed, %d running, %d pending, %d skipped of %s\n", d.RolloutID, d.Status,
		d.Counts.Succeeded, d.Counts.Failed, d.Counts.Running, d.Counts.Pending, d.Counts.Skipped, count(d.Counts.Total, "target"))
	if d.Abort != "" {
		fmt.Fprintf(a.stdout, "aborted: %s\n", d.Abort)
	}
	waves := make([]table.Row, len(d.Waves))
	for i, w := range d.Waves {
		waves[i] = table.Row{w.Wave + 1, w.Started, w.Counts.Total, w.Counts.Succeeded, w.Counts.Failed, w.Counts.Running, w.Counts.Pending}
	}
	if err := a.emit(nil, table.Row{"Wave", "Started", "Targets", "Succeeded", "Failed", "Running", "Pending"}, waves); err != nil {
		return err
	}
	targets := make([]table.Row, len(d.Targets))
	for i, t := range d.Targets {
		why := t.Message
		if t.Reason != "" {
			why = string(t.Reason) + ": " + t.Message
		}
		targets[i] = table.Row{t.Wave + 1, t.InstallCode, t.Status, t.Attempt, strings.Join(t.LicenseIDs, " "), why}
	}
	return a.emit(nil, table.Row{"Wave", "Install Code", "Status", "Attempts", "Licenses", "Reason"}, targets)
}

// followRollout shows the progress of a rollout on stderr until it ends,
// then prints its status: a progress bar on a terminal, else a plain line
// whenever the counts change (redraws would garble a log or a pipe).
func (a *app) followRollout(ctx context.Context, c *client.Client, id, cmdID string) error {
	var bar *progressbar.ProgressBar
	var last rollouts.Counts
	for i := 0; ; i++ {
		var d rollouts.Detail
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Query(qctx, client.QueryRollout, client.Params{RolloutID: id}, &d)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return a.stoppedFollowing(ctx, id)
			}
			return err
		}
		switch {
		case a.output == "json":
		case a.terminal(a.stderr):
			if bar == nil {
				bar = progressbar.NewOptions(max(1, d.Counts.Total), progressbar.OptionSetWriter(a.stderr), progressbar.OptionSetWidth(40),
					progressbar.OptionShowCount(), progressbar.OptionSetDescription(d.Kind))
			}
			_ = bar.Set(d.Counts.Succeeded + d.Counts.Failed)
		case i == 0 || d.Counts != last:
			fmt.Fprintf(a.stderr, "rollout %s: %s, %d of %s done (%d succeeded, %d failed)\n", id, d.Status,
				d.Counts.Succeeded+d.Counts.Failed+d.Counts.Skipped, count(d.Counts.Total, "target"), d.Counts.Succeeded, d.Counts.Failed)
		}
		last = d.Counts
		switch d.Status {
		case "completed", "aborted", "cancelled":
			if bar != nil {
				fmt.Fprintln(a.stderr)
			}
			return a.printRollout(d, cmdID)
		}
		select {
		case <-ctx.Done():
			return a.stoppedFollowing(ctx, id)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stoppedFollowing is the error of a rollout no longer followed: it goes
// on, and its id says how to follow it again.
func (a *app) stoppedFollowing(ctx context.Context, id string) error {
	return a.ended(ctx, fmt.Errorf("rollout %s goes on; follow it with `licensebus rollout status %s --watch`", id, id))
}

func (a *app) rolloutListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List rollouts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var rs []rollouts.Rollout
				if err := c.Query(ctx, client.QueryRollouts, client.Params{}, &rs); err != nil {
					return err
				}
				rows := make([]table.Row, len(rs))
				for i, r := range rs {
					rows[i] = table.Row{r.RolloutID, r.Kind, r.Status, r.Counts.Total, r.Counts.Succeeded, r.Counts.Failed, r.StartedAt.Local().Format(time.DateTime), r.StartedBy}
				}
				return a.emit(rs, table.Row{"Rollout ID", "Kind", "Status", "Targets", "Succeeded", "Failed", "Started", "By"}, rows)
			})
		},
	}
}

func (a *app) rolloutRefCmd(verb, short string, t events.Type) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ROLLOUT_ID",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, t, &events.RolloutRef{RolloutID: args[0]})
			})
		},
	}
}
