package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/spf13/cobra"
)

func (a *app) projectionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "projections", Short: "Read models built from the event stream"}
	show := func(query string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var st client.Status
				if err := c.Query(ctx, query, client.Params{}, &st); err != nil {
					return err
				}
				names := make([]string, 0, len(st.Checkpoints))
				for n := range st.Checkpoints {
					names = append(names, n)
				}
				sort.Strings(names)
				rows := make([]table.Row, 0, len(names))
				for _, n := range names {
					rows = append(rows, table.Row{n, st.Checkpoints[n], st.EventsLastSeq, fmt.Sprint(st.Checkpoints[n] >= st.EventsLastSeq)})
				}
				return a.emit(st, table.Row{"Projection", "Checkpoint", "Events Last Seq", "Caught Up"}, rows)
			})
		}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "rebuild", Short: "Throw the read models away and rebuild them from the event stream", Args: cobra.NoArgs, RunE: show(client.QueryRebuild)},
		&cobra.Command{Use: "status", Short: "Show each projection's checkpoint", Args: cobra.NoArgs, RunE: show(client.QueryStatus)},
	)
	return cmd
}
