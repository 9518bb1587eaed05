package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// errInterrupted is how a command stopped by Ctrl-C ends.
var errInterrupted = fmt.Errorf("interrupted: %w", context.Canceled)

// readContext is the context a command that reads runs in: the command's
// own, which Ctrl-C ends, bounded by --timeout. One that runs as long as
// what it reads (a follow, an export or a verification of the whole
// trail) is bounded only when --timeout is given: the default would cut a
// large trail short.
func (a *app) readContext(cmd *cobra.Command, long bool) (context.Context, context.CancelFunc) {
	if long && !cmd.Flags().Changed("timeout") {
		return context.WithCancel(cmd.Context())
	}
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// stopped returns err, or, when ctx (from readContext) has ended, why:
// Ctrl-C, or --timeout with what to do about it.
func (a *app) stopped(cmd *cobra.Command, ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case cmd.Context().Err() != nil:
		return errInterrupted
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no result within --timeout %s (a longer --timeout waits longer): %w", a.timeout, context.DeadlineExceeded)
	}
	return err
}
