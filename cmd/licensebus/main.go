// Command licensebus is the license and device-state backbone for fleets of
// SmartServer IoT edge controllers. "licensebus serve" runs it (with an
// embedded JetStream server unless --nats names a cluster); every other
// command is a client that talks to it over NATS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK        = 0
	exitRefused   = 1   // a command was rejected, or a query refused
	exitUsage     = 2   // bad flags or arguments
	exitInternal  = 3   // could not reach the server, timeouts, bugs
	exitInterrupt = 130 // interrupted (Ctrl-C), as shells report SIGINT
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

// refusedError marks an outcome the user asked about that failed, such as
// a rollout with failed targets: exit 1 like a rejected command.
type refusedError struct{ error }

// run is main without the process: tests call it with their own streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	app := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := app.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	app.closeTracing()
	if err == nil {
		return exitOK
	}
	// Several refusals (of several commands sent at once) get a line each.
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, "Error:", strings.TrimRight(e.Error(), "\n"))
	}
	var ue usageError
	var re refusedError
	var ie interruptedError
	switch {
	case errors.As(err, &ie), errors.Is(ctx.Err(), context.Canceled):
		return exitInterrupt
	case errors.As(err, &ue), !app.started:
		return exitUsage
	case errors.As(err, &re):
		return exitRefused
	}
	if r, ok := refusal(err); ok {
		return r.Class().ExitCode()
	}
	return exitInternal
}

// refusal is the reason err refuses with: a rejected command's, or a
// refused query's.
func refusal(err error) (events.Reason, bool) {
	if rej := events.AsRejection(err); rej != nil {
		return rej.Reason, true
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		return events.Reason(ae.Code), true
	}
	return "", false
}
