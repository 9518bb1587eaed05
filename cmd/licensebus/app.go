package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go"
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
	// licenseOut is where a fulfil's license file goes ("": stdout).
	licenseOut string
	// started is set once the command line is parsed and checked; an
	// error before that (an unknown command, say) is a usage error
	// whatever cobra calls it.
	started bool
	tracing tracer
	// refused is what the NATS server refused, identity who the CLI is
	// on the bus (connect.go).
	refused  refusals
	identity auth.Identity
}

const (
	defaultNatsURL = "nats://127.0.0.1:4222"
	defaultTimeout = 2 * time.Minute
)

// sends gives a command that sends commands its --id and --timeout.
func (a *app) sends(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringVar(&a.cmdID, "id", "", "CloudEvent id of the command (default: a new UUID); repeat it to retry safely: a repeat gets the first outcome")
	return a.waits(cmd)
}

// waits gives a command that waits for outcomes its --timeout.
func (a *app) waits(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().DurationVar(&a.timeout, "timeout", defaultTimeout, "how long to wait for the outcome (a command stays stored when the wait ends: see licensebus command wait)")
	return cmd
}

// reads gives a command that reads what the server stores, through
// readContext, its --timeout.
func (a *app) reads(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().DurationVar(&a.timeout, "timeout", defaultTimeout, "how long to wait for the result (exit 3 when it runs out)")
	return cmd
}

// readsLong gives a command that runs as long as what it reads (readContext
// with long) a --timeout that bounds it only when given.
func (a *app) readsLong(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().DurationVar(&a.timeout, "timeout", defaultTimeout, "stop after this long (exit 3); without it the command runs until it is done or interrupted")
	cmd.Flags().Lookup("timeout").DefValue = "0s" // no bound unless given: say no default
	return cmd
}

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
			a.refused.watch(cmd)
			a.started = true
			return a.setupTracing(cmd.Context())
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// A noun given a verb it does not know parses the verb's flags
		// itself and fails on them: the verb is what is wrong.
		if isNoun(c) && c.Flags().NArg() > 0 {
			return unknownCommand(c, c.Flags().Arg(0))
		}
		return usageError{err}
	})
	pf := root.PersistentFlags()
	url := a.getenv("NATS_URL")
	if url == "" {
		url = defaultNatsURL
	}
	pf.StringVar(&a.natsURL, "nats", url, "NATS server URL (env NATS_URL)")
	pf.StringVar(&a.creds, "creds", a.getenv("NATS_CREDS"), "NATS credentials file (env NATS_CREDS; default ./licensebus-data/admin.creds if it exists)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&a.actor, "actor", defaultActor(a.getenv), "who is acting, recorded on every command")
	a.timeout = defaultTimeout // queries have no --timeout, and use this
	root.AddCommand(a.serveCmd(), a.customerCmd(), a.licenseCmd(), a.smartserverCmd(), a.projectionsCmd(), a.reactorsCmd(), a.deviceCmd(), a.fleetCmd(), a.rolloutCmd(), a.commandCmd(), a.benchCmd())
	root.AddCommand(a.auditCmd(), a.credsCmd(), a.clusterCmd())
	setExamples(root)
	enumFlag(root, "output", "table", "json")
	// Flags of commands defined elsewhere that take fixed values, so that
	// every such flag refuses the same way, while parsing.
	for _, e := range []struct {
		path    []string
		flag    string
		allowed []string
	}{
		{[]string{"serve"}, "log-level", []string{"trace", "debug", "info", "warn", "error"}},
		{[]string{"audit", "tail"}, "kind", []string{string(audit.KindCommand), string(audit.KindEvent), string(audit.KindRejection)}},
		{[]string{"audit", "export"}, "format", []string{"jsonl", "csv"}},
	} {
		if c, _, err := root.Find(e.path); err == nil && c.Name() == e.path[len(e.path)-1] {
			enumFlag(c, e.flag, e.allowed...)
		}
	}
	// The audit commands read the whole trail and honour --timeout when
	// given (readContext); it is theirs now that it is not the root's.
	for _, verb := range []string{"tail", "export", "verify", "trace", "checkpoints"} {
		if c, _, err := root.Find([]string{"audit", verb}); err == nil && c.Name() == verb && c.Flags().Lookup("timeout") == nil {
			a.readsLong(c)
		}
	}
	// A noun without its verb prints its help; with a verb it does not
	// know it is refused with cobra's suggestions (cobra itself suggests
	// only below the root, and would print the help and exit 0).
	for _, c := range root.Commands() {
		if isNoun(c) {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return unknownCommand(cmd, args[0])
				}
				return nil
			}
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
	a.reportRefusals(root)
	return root
}

// isNoun tells a command below the root that groups verbs.
func isNoun(c *cobra.Command) bool { return c.HasParent() && c.HasSubCommands() }

// unknownCommand refuses a verb a noun does not have, in the words cobra
// uses for the root, with the closest verbs.
func unknownCommand(noun *cobra.Command, verb string) error {
	if noun.SuggestionsMinimumDistance <= 0 {
		noun.SuggestionsMinimumDistance = 2 // cobra's default, set only where cobra suggests
	}
	var b strings.Builder
	fmt.Fprintf(&b, "unknown command %q for %q", verb, noun.CommandPath())
	if s := noun.SuggestionsFor(verb); len(s) > 0 {
		b.WriteString("\n\nDid you mean this?")
		for _, v := range s {
			b.WriteString("\n\t" + v)
		}
	}
	fmt.Fprintf(&b, "\n\nRun '%s --help' for usage.", noun.CommandPath())
	return usageError{errors.New(b.String())}
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

// conn is the CLI's connection to the server named by --nats.
type conn struct {
	*client.Client
	nc *nats.Conn
	// lost is closed when the connection closed without being asked to:
	// the server stayed away longer than the reconnects last.
	lost <-chan struct{}
}

// Close closes the connection.
func (c *conn) Close() { c.nc.Close() }

// lostErr says the connection is gone for good, in one line.
func (c *conn) lostErr(url string) error {
	why := "gave up reconnecting"
	if err := c.nc.LastError(); err != nil {
		why = err.Error()
	}
	return fmt.Errorf("lost the connection to %s and could not reconnect: %s", url, why)
}

// connect opens a client to the server named by --nats, with the
// credentials of --creds (see dial). A server that goes
// away and comes back (a restart) is expected: reconnecting is quiet, and
// so is the "consumer not active" that nats.go reports meanwhile for the
// ordered consumers of KV watches (they reset themselves once reconnected;
// its default handler writes it to stderr). Other asynchronous errors are
// said once each.
func (a *app) connect(ctx context.Context) (*conn, error) {
	lost := make(chan struct{})
	var mu sync.Mutex
	said := map[string]bool{}
	quietErrors := func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrConsumerNotActive) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !said[err.Error()] {
			said[err.Error()] = true
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
	}
	nc, err := a.dial("licensebus cli", quietErrors, nats.ClosedHandler(func(*nats.Conn) { close(lost) }))
	if err != nil {
		return nil, err
	}
	c, err := client.New(ctx, nc, a.actor)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.UseTracer(a.tracing.t)
	if a.identity.Role == auth.SmartServer {
		c.ActAs(a.identity.Name) // its credentials ask in its own scope only
	}
	return &conn{Client: c, nc: nc, lost: lost}, nil
}

// withClient runs f with a client and the --timeout deadline.
func (a *app) withClient(cmd *cobra.Command, f func(ctx context.Context, c *client.Client) error) (err error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	ctx, span := a.span(ctx, cmd)
	defer func() { span.End(err) }()
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c.Client)
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

// count says n of noun in words that agree: "1 device", "2 devices".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// terminal tells whether w is a terminal: progress is drawn only there.
func (a *app) terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }
