package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/spf13/cobra"
)

func (a *app) projectionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "projections", Short: "Read models built from the event stream"}
	show := func(query string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.readContext(cmd, false)
			defer cancel()
			c, err := a.connect(ctx)
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			defer c.Close()
			var st client.Status
			if err := c.Query(ctx, query, client.Params{}, &st); err != nil {
				return a.stopped(cmd, ctx, err)
			}
			probs, err := projections.Check(ctx, c.JetStream(), st.Checkpoints)
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			return a.projectionsStatus(st, probs)
		}
	}
	cmd.AddCommand(
		a.reads(&cobra.Command{Use: "rebuild", Short: "Throw the read models away and rebuild them from the event stream", Args: cobra.NoArgs, RunE: show(client.QueryRebuild)}),
		a.reads(&cobra.Command{Use: "status", Short: "Show each projection's checkpoint", Args: cobra.NoArgs, RunE: show(client.QueryStatus)}),
	)
	return cmd
}

// statusJSON is the JSON of projections status and rebuild.
type statusJSON struct {
	client.Status
	// Problems are the ways the models are out of step with the event
	// stream; a model named in one is not caught up.
	Problems []projections.Problem `json:"problems"`
}

// projectionsStatus prints each projection's checkpoint against the event
// stream and refuses (exit 1) when any is out of step with it.
func (a *app) projectionsStatus(st client.Status, probs []projections.Problem) error {
	names := make([]string, 0, len(st.Checkpoints))
	for n := range st.Checkpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	bad := map[string]bool{}
	for _, p := range probs {
		bad[p.Model] = true
	}
	rows := make([]table.Row, 0, len(names))
	for _, n := range names {
		ck := st.Checkpoints[n]
		rows = append(rows, table.Row{n, ck, st.EventsLastSeq, fmt.Sprint(ck >= st.EventsLastSeq && !bad[n] && !bad[""])})
	}
	if probs == nil {
		probs = []projections.Problem{}
	}
	if err := a.emit(statusJSON{st, probs}, table.Row{"Projection", "Checkpoint", "Events Last Seq", "Caught Up"}, rows); err != nil {
		return err
	}
	if len(probs) == 0 {
		return nil
	}
	lines := make([]string, len(probs))
	for i, p := range probs {
		lines[i] = p.Detail
		if p.Model != "" {
			lines[i] = "projection " + p.Model + ": " + p.Detail
		}
	}
	return &client.APIError{Code: string(events.ReasonOutOfStep), Message: fmt.Sprintf("the projections are out of step with the event stream (rebuild them once you know why):\n  %s", strings.Join(lines, "\n  "))}
}
