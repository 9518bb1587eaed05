package main

import (
	"context"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/spf13/cobra"
)

func (a *app) reactorsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reactors",
		Short: "The handlers' reactions to events, and how far behind they are",
		Long: `The cloud side, the device side and the provisioner react to events their
process reads anyway (no durable consumers on the event stream). Each reactor
stores a checkpoint in the KV bucket ` + bus.ReactorsBucket + `: the event sequence
up to which it has handled everything. A restart reacts again after it.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show each reactor's checkpoint against the event stream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeFn, err := a.directJS("licensebus reactors")
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			last, states, err := bus.Reactors(ctx, js)
			if err != nil {
				return err
			}
			if states == nil {
				states = []bus.ReactorState{}
			}
			rows := make([]table.Row, 0, len(states))
			for _, st := range states {
				rows = append(rows, table.Row{st.Name, st.Checkpoint, last, st.Behind})
			}
			out := struct {
				EventsLastSeq uint64             `json:"events_last_seq"`
				Reactors      []bus.ReactorState `json:"reactors"`
			}{last, states}
			return a.emit(out, table.Row{"Reactor", "Checkpoint", "Events Last Seq", "Behind"}, rows)
		},
	})
	return cmd
}
