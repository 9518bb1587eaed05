package client

import (
	"context"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// UseTracer makes each command sent a span ("send <type>", a producer) in
// the trace of ctx, or the root of a new trace. Without a Tracer a command
// still carries a traceparent: the one of the span in ctx, or a new
// trace's. Call it before sending.
func (c *Client) UseTracer(t *tracing.Tracer) { c.tracer = t }

// traced starts the send span of a command of type info and puts its
// trace context on meta; end ends it.
func (c *Client) traced(ctx context.Context, info events.Info, meta *events.Meta) (end func(error)) {
	ctx, span := c.tracer.Start(ctx, "send "+info.Aggregate+"."+info.Verb, trace.SpanKindProducer)
	tracing.Inject(ctx, meta)
	return span.End
}
