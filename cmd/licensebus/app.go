package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// app holds the global flags and streams of one CLI invocation.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	natsURL string
	creds   string // --creds, else NATS_CREDS; see credsPath
	output  string
	actor   string
	cmdID   string
	timeout time.Duration
	// started is set once the command line is parsed and checked; an
	// error before that (an unknown command, say) is a usage error
	// whatever cobra calls it.
	started bool
	// refused is what the NATS server refused (connect.go).
	refused refusals
}

const defaultNatsURL = "nats://127.0.0.1:4222"

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "licensebus",
		Short:         "License and device-state backbone for SmartServer fleets",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Cobra checks required flags only after this hook, as plain
			// errors; checked here they are usage errors like the rest.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return usageError{err}
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return usageError{err}
			}
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("-o must be table or json, not %q", a.output)}
			}
			a.refused.watch(cmd)
			a.started = true
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	url := a.getenv("NATS_URL")
	if url == "" {
		url = defaultNatsURL
	}
	pf.StringVar(&a.natsURL, "nats", url, "NATS server URL (env NATS_URL)")
	pf.StringVar(&a.creds, "creds", a.getenv("NATS_CREDS"), "NATS credentials file (env NATS_CREDS; default ./licensebus-data/admin.creds if it exists)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&a.actor, "actor", defaultActor(a.getenv), "who is acting, recorded on every command")
	pf.StringVar(&a.cmdID, "id", "", "CloudEvent id of the command; repeat it to retry safely")
	pf.DurationVar(&a.timeout, "timeout", 2*time.Minute, "how long to wait for an outcome")
	root.AddCommand(a.serveCmd(), a.customerCmd(), a.licenseCmd(), a.smartserverCmd(), a.projectionsCmd(), a.reactorsCmd(), a.deviceCmd(), a.fleetCmd(), a.rolloutCmd(), a.benchCmd())
	root.AddCommand(a.auditCmd(), a.credsCmd())
	// A noun without its verb prints its help; with a verb it does not
	// know it is refused (cobra would print the help and exit 0).
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				return usageError{fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())}
			}
		}
	}
	a.reportRefusals(root)
	return root
}

func defaultActor(getenv func(string) string) string {
	if v := getenv("LICENSEBUS_ACTOR"); v != "" {
		return v
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "user:" + u.Username
	}
	return "user:unknown"
}

// connect opens a client to the server named by --nats, with the
// credentials of --creds (see dial).
func (a *app) connect(ctx context.Context) (*client.Client, func(), error) {
	nc, err := a.dial("licensebus cli")
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(ctx, nc, a.actor)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return c, nc.Close, nil
}

// withClient runs f with a client and the --timeout deadline.
func (a *app) withClient(cmd *cobra.Command, f func(ctx context.Context, c *client.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	c, closeFn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return f(ctx, c)
}

// emit prints v as JSON with -o json, or as a table of rows otherwise.
func (a *app) emit(v any, header table.Row, rows []table.Row) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, "No entries.")
		return nil
	}
	t := table.NewWriter()
	t.SetOutputMirror(a.stdout)
	t.SetStyle(table.StyleLight)
	t.AppendHeader(header)
	t.AppendRows(rows)
	t.Render()
	return nil
}

func isAPIRefusal(err error) bool {
	_, ok := err.(*client.APIError)
	return ok
}

// confirm asks a yes/no question on the terminal; without a terminal it
// refuses, so scripts must say --yes.
func (a *app) confirm(question string) (bool, error) {
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return false, usageError{fmt.Errorf("%s: confirmation needed; pass --yes to confirm without a terminal", question)}
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	var answer string
	_, _ = fmt.Fscanln(a.stdin, &answer)
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}

func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }
