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
	"syscall"

	"github.com/licensebus/licensebus/events"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK       = 0
	exitRefused  = 1 // a command was rejected, or a query refused
	exitUsage    = 2 // bad flags or arguments
	exitInternal = 3 // could not reach the server, timeouts, bugs
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

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
	fmt.Fprintln(stderr, "Error:", err)
	var ue usageError
	switch {
	case errors.As(err, &ue), !app.started:
		return exitUsage
	case events.AsRejection(err) != nil, isAPIRefusal(err):
		return exitRefused
	}
	return exitInternal
}
