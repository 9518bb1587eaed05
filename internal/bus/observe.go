package bus

import (
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/tracing"
)

// Telemetry is how a process observes its handlers: metrics through the
// Observer, traces through the Tracer. Either may be nil.
type Telemetry struct {
	// Observer is told what each shell does (metrics.Metrics).
	Observer Observer
	// Tracer makes each step a span in its cause's trace; nil passes the
	// trace context on without spans.
	Tracer *tracing.Tracer
}

// Observer is told what a Shell does, for metrics (metrics.Metrics
// implements it). Calls come from the handlers' goroutines, concurrently;
// they must be quick and must not block.
type Observer interface {
	// Command: a command is being decided; its outcome is on its way.
	Command(cmd *events.Message)
	// Repeated: a command was handled before; its first outcome stands
	// and nothing is appended.
	Repeated(cmd *events.Message)
	// Unparsed: a message that is no CloudEvent was refused.
	Unparsed()
	// Appended: the shell stored ev, an event or a rejection, on the event
	// stream (a repeat JetStream recognised is not told).
	Appended(ev *events.Message)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Command(*events.Message)  {}
func (nopObserver) Repeated(*events.Message) {}
func (nopObserver) Unparsed()                {}
func (nopObserver) Appended(*events.Message) {}
