package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// enumValue is a flag that takes one of a fixed set of values: anything
// else is refused while the command line is parsed, so it is a usage
// error that lists what is allowed.
type enumValue struct {
	pflag.Value
	allowed []string
}

func (e *enumValue) Set(v string) error {
	if !slices.Contains(e.allowed, v) {
		return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
	}
	return e.Value.Set(v)
}

// enumFlag restricts the flag name of cmd, a local or a persistent one,
// to the allowed values, and completes them in shells. A flag cmd does
// not have is left alone.
func enumFlag(cmd *cobra.Command, name string, allowed ...string) {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		f = cmd.PersistentFlags().Lookup(name)
	}
	if f == nil {
		return
	}
	if _, ok := f.Value.(*enumValue); !ok {
		f.Value = &enumValue{Value: f.Value, allowed: allowed}
	}
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
}
