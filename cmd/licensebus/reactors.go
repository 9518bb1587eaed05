package main

import (
	"fmt"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
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
	cmd.AddCommand(a.reads(&cobra.Command{
		Use:   "status",
		Short: "Show each reactor's checkpoint against the event stream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeFn, err := a.directJS("licensebus reactors")
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := a.readContext(cmd, false)
			defer cancel()
			last, states, err := bus.Reactors(ctx, js)
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			want, _ := bus.WantedConfig(events.EventsStream)
			stream, err := bus.CheckStream(ctx, js, want)
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			if states == nil {
				states = []bus.ReactorState{}
			}
			var probs []string
			if len(stream.Drift) > 0 {
				probs = append(probs, fmt.Sprintf("stream %s: settings differ from what serve creates: %s", stream.Name, strings.Join(stream.Drift, "; ")))
			}
			rows := make([]table.Row, 0, len(states))
			for _, st := range states {
				rows = append(rows, table.Row{st.Name, st.Checkpoint, last, st.Behind})
				if st.Problem != "" {
					probs = append(probs, fmt.Sprintf("reactor %s at checkpoint %d: %s", st.Name, st.Checkpoint, st.Problem))
				}
			}
			out := struct {
				EventsLastSeq uint64             `json:"events_last_seq"`
				Reactors      []bus.ReactorState `json:"reactors"`
				// Problems: the checkpoints and stream settings out of step.
				Problems []string `json:"problems"`
			}{last, states, probs}
			if out.Problems == nil {
				out.Problems = []string{}
			}
			if err := a.emit(out, table.Row{"Reactor", "Checkpoint", "Events Last Seq", "Behind"}, rows); err != nil {
				return err
			}
			if len(probs) > 0 {
				return &client.APIError{Code: string(events.ReasonOutOfStep), Message: "the reactors are out of step with the event stream:\n  " + strings.Join(probs, "\n  ")}
			}
			return nil
		},
	}))
	return cmd
}
