package projections

import (
	"context"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/tracing"
)

// UseTracer makes applying an event to the models a span in the event's
// trace ("project <type>"), while the runner follows the head of the
// stream: a restart's catch-up and a rebuild replay history, which belongs
// to no live trace, and would flood the exporter. Call it before Run.
func (r *Runner) UseTracer(t *tracing.Tracer) { r.tracer = t }

// span starts the span of applying ev, if it is traced: near the head
// (at most behind events after it).
func (r *Runner) span(ctx context.Context, ev bus.FeedEvent, behind uint64) tracing.Span {
	if r.tracer == nil || ev.Pending > behind {
		return tracing.Span{}
	}
	_, s := r.tracer.Step(ctx, "project", ev.Message, ev.Seq)
	return s
}
