package main

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit trail: every command, event and rejection, hash-chained",
		Long: `The audit trail has one entry per message of the command stream (valid or not)
and of the event stream (events and rejections), in the order the server stored
them, each chained to the one before by a SHA-256 hash. It is read straight from
the LICENSEBUS_AUDIT stream; docs/consumers.md describes the entry format.

Each command reads the whole trail (or what it asks for), so it runs until it
is done or interrupted (Ctrl-C, exit 130; tail --follow ends there with exit 0);
--timeout, when given, bounds it (exit 3 when it runs out).`,
	}
	cmd.AddCommand(a.auditTailCmd(), a.auditExportCmd(), a.auditVerifyCmd(), a.auditTraceCmd(), a.auditCheckpointsCmd())
	return cmd
}

// auditJS connects straight to JetStream: the trail is read from its own
// stream with ordered consumers, so what verify checks is what is stored.
func (a *app) auditJS() (jetstream.JetStream, func(), error) { return a.directJS("licensebus audit") }

// directJS connects straight to JetStream, for commands that read what is
// stored rather than ask the server.
func (a *app) directJS(name string) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(a.natsURL, nats.Name(name), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w (is `licensebus serve` running? set --nats or NATS_URL)", a.natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// parseWhen reads a point in time: RFC 3339, a date (UTC midnight), a date
// and minute, or a duration meaning that long ago ("15m", "24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError{fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (15m)", s)}
}
