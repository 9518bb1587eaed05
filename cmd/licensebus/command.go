package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/licensebus/licensebus/internal/client"
	"github.com/spf13/cobra"
)

func (a *app) commandCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "command", Short: "Commands already sent"}
	cmd.AddCommand(a.waits(&cobra.Command{
		Use:   "wait COMMAND_ID...",
		Short: "Wait for the outcome of stored commands and print it as the command that sent them does",
		Long: `Wait for the outcome of commands that were stored (every command that sends
says "command ID stored" on stderr, or gives its command_id with -o json) and
print it as the command would have, with the same exit code: 0 accepted,
1 refused. An interrupted command tells which ids to wait for.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				cmds := make([]sent, len(args))
				for i, id := range args {
					// A rollout start's outcome is kept under its rollout id.
					out, err := c.WaitAny(ctx, id, client.RolloutID(id))
					if err != nil {
						if ctx.Err() == nil {
							return err
						}
						return a.ended(ctx, fmt.Errorf("no outcome yet for %s: a stored command is still being handled (is `licensebus serve` running?); "+
							"one that was never stored has none: repeat it with its --id", strings.Join(args[i:], " ")))
					}
					cmds[i] = sent{ID: id, Corr: out.CorrelationID, Out: out}
				}
				return a.finish(ctx, c, cmds)
			})
		},
	}))
	return cmd
}
