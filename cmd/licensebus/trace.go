package main

import (
	"context"
	"time"

	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"
)

// tracer is one CLI invocation's tracing: from OTEL_EXPORTER_OTLP_ENDPOINT
// (none when unset: commands then carry a new trace's context, with no
// span of the CLI's), or a provider the caller set (tests).
type tracer struct {
	provider trace.TracerProvider
	shutdown func(context.Context) error
	t        *tracing.Tracer
}

// setupTracing reads the environment once per invocation.
func (a *app) setupTracing(ctx context.Context) error {
	if a.tracing.provider == nil {
		tp, shutdown, err := tracing.FromEnv(ctx, a.getenv, "")
		if err != nil {
			return err
		}
		a.tracing.provider, a.tracing.shutdown = tp, shutdown
	}
	a.tracing.t = tracing.New(a.tracing.provider)
	return nil
}

// closeTracing exports what the invocation's spans left buffered.
func (a *app) closeTracing() {
	if a.tracing.shutdown == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.tracing.shutdown(ctx)
}

// span starts the trace of one CLI command: "licensebus smartserver
// activate"; every command it sends is a child.
func (a *app) span(ctx context.Context, cmd *cobra.Command) (context.Context, tracing.Span) {
	return a.tracing.t.Start(ctx, cmd.CommandPath(), trace.SpanKindClient)
}
