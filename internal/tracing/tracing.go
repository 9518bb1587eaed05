// Package tracing links licensebus's steps into W3C traces. Every CloudEvent
// carries a traceparent (the CloudEvents distributed-tracing extension): a
// command gets one from the trace its sender runs in, or a new one; each
// step that handles a message continues the message's trace, and what the
// step writes carries the step's own span. With a Tracer, the steps are
// OpenTelemetry spans, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
// is set; without one (nil), traces are only passed on, at the cost of
// copying two strings.
package tracing

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"sync/atomic"

	"github.com/licensebus/licensebus/events"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names licensebus's tracer.
const InstrumentationName = "github.com/licensebus/licensebus"

// Span attribute keys licensebus sets besides OpenTelemetry's messaging
// conventions.
const (
	AttrEventID       = attribute.Key("cloudevents.event_id")
	AttrCorrelationID = attribute.Key("licensebus.correlation_id")
	AttrOutcome       = attribute.Key("licensebus.outcome")
	AttrReason        = attribute.Key("licensebus.reason")
	AttrSeq           = attribute.Key("licensebus.stream_seq")
)

// Tracer starts licensebus's spans. A nil *Tracer starts none: its methods
// hand back the context they were given and a Span that does nothing.
type Tracer struct {
	t   trace.Tracer
	off atomic.Bool
}

// SetOn turns a Tracer's spans on or off while it is in use (the bench
// compares both in one run); a Tracer starts on.
func (t *Tracer) SetOn(on bool) {
	if t != nil {
		t.off.Store(!on)
	}
}

// New returns a Tracer on tp; nil tp gives a nil Tracer (tracing off).
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(InstrumentationName)}
}

// Span is one step's span; the zero Span does nothing.
type Span struct{ s trace.Span }

// End ends the span; a non-nil err marks it failed (a transient failure:
// the step will be tried again).
func (s Span) End(err error) {
	if s.s == nil {
		return
	}
	if err != nil {
		s.s.RecordError(err)
		s.s.SetStatus(codes.Error, err.Error())
	}
	s.s.End()
}

// Step starts the span of a step that handles m (a command, or an event a
// reactor or projection reacts to), in m's trace: its parent is the span
// that wrote m. name is the verb ("handle", "project"); the span is named
// "<name> <aggregate>.<verb>" of m's type.
func (t *Tracer) Step(ctx context.Context, name string, m *events.Message, seq uint64) (context.Context, Span) {
	if t == nil || m == nil || t.off.Load() {
		return ctx, Span{}
	}
	if sc := parse(m.TraceParent(), m.TraceState()); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	// Few attributes: each costs the SDK an allocation or two per span,
	// and the type is in the name, the rest in the audit trail by id.
	attrs := [3]attribute.KeyValue{AttrEventID.String(m.ID()), AttrCorrelationID.String(m.CorrelationID())}
	n := 2
	if seq != 0 {
		attrs[n], n = AttrSeq.Int64(int64(seq)), n+1
	}
	ctx, s := t.t.Start(ctx, spanName(name, m), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs[:n]...))
	return ctx, Span{s}
}

// Start starts a span of its own (a CLI command, a send), a child of the
// span in ctx if there is one.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, Span) {
	if t == nil || t.off.Load() {
		return ctx, Span{}
	}
	ctx, s := t.t.Start(ctx, name, trace.WithSpanKind(kind))
	return ctx, Span{s}
}

// spanName is "<step> <aggregate>.<verb>" of m's type (its type when
// licensebus does not define it), built once per step and type.
func spanName(step string, m *events.Message) string {
	if n, ok := spanNames[[2]string{step, string(m.Info.Type)}]; ok {
		return n
	}
	if m.Info.Verb != "" {
		return step + " " + m.Info.Aggregate + "." + m.Info.Verb
	}
	return step + " " + string(m.Type())
}

// spanNames are the names of the steps licensebus traces, by step and type.
var spanNames = func() map[[2]string]string {
	names := map[[2]string]string{}
	for _, t := range events.Types() {
		info, _ := events.Lookup(t)
		for _, step := range []string{"handle", "screen", "project"} {
			names[[2]string{step, string(t)}] = step + " " + info.Aggregate + "." + info.Verb
		}
	}
	return names
}()

// Inject puts the trace context of the span in ctx on meta, when there is
// one; otherwise meta keeps what it has (Next copies the cause's), and a
// meta with none gets a new trace, so every message carries one.
func Inject(ctx context.Context, meta *events.Meta) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		meta.TraceParent, meta.TraceState = format(sc), sc.TraceState().String()
		return
	}
	if meta.TraceParent == "" {
		meta.TraceParent, meta.TraceState = NewTraceParent(), ""
	}
}

// Link gives m, built before the step's span started, the trace context
// of the span in ctx, when there is one; a message with none gets a new
// trace.
func Link(ctx context.Context, m *events.Message) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		m.SetTrace(format(sc), sc.TraceState().String())
		return
	}
	if m.TraceParent() == "" {
		m.SetTrace(NewTraceParent(), "")
	}
}

// Context returns ctx with m's trace context as its remote parent: for a
// step that starts spans of its own on behalf of m.
func Context(ctx context.Context, m *events.Message) context.Context {
	if sc := parse(m.TraceParent(), m.TraceState()); sc.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// TraceID returns the trace id of a traceparent, "" when it is not a valid
// one.
func TraceID(traceparent string) string {
	sc := parse(traceparent, "")
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// NewTraceParent returns the traceparent of a new trace: random trace and
// parent ids, sampled, so that a Tracer downstream records it.
func NewTraceParent() string {
	var sc trace.SpanContextConfig
	for !sc.TraceID.IsValid() {
		putRandom(sc.TraceID[:])
	}
	for !sc.SpanID.IsValid() {
		putRandom(sc.SpanID[:])
	}
	sc.TraceFlags = trace.FlagsSampled
	return format(trace.NewSpanContext(sc))
}

// putRandom fills b from the runtime's per-thread generator: ids must be
// unique, not secret.
func putRandom(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// format writes sc as a version-00 traceparent.
func format(sc trace.SpanContext) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	flags := [1]byte{byte(sc.TraceFlags() & trace.FlagsSampled)}
	hex.Encode(b[53:55], flags[:])
	return string(b[:])
}

// parse reads a traceparent and tracestate as OpenTelemetry's W3C
// propagator does (that one for anything but the version-00 form
// licensebus writes); an invalid one gives an invalid SpanContext.
func parse(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	if len(traceparent) == 55 && traceparent[:3] == "00-" && traceparent[35] == '-' && traceparent[52] == '-' && tracestate == "" {
		var c trace.SpanContextConfig
		_, e1 := hex.Decode(c.TraceID[:], []byte(traceparent[3:35]))
		_, e2 := hex.Decode(c.SpanID[:], []byte(traceparent[36:52]))
		var f [1]byte
		_, e3 := hex.Decode(f[:], []byte(traceparent[53:55]))
		if e1 == nil && e2 == nil && e3 == nil && lowerHex(traceparent) && f[0] <= 3 {
			c.TraceFlags, c.Remote = trace.TraceFlags(f[0])&(trace.FlagsSampled|trace.FlagsRandom), true
			return trace.NewSpanContext(c) // invalid when an id is all zeros
		}
		return trace.SpanContext{}
	}
	c := carrier{traceparent, tracestate}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), c))
}

// lowerHex says the hex digits of a version-00 traceparent are lowercase,
// as the W3C format requires (hex.Decode takes both cases).
func lowerHex(tp string) bool {
	for i := 0; i < len(tp); i++ {
		if c := tp[i]; c >= 'A' && c <= 'F' {
			return false
		}
	}
	return true
}

// carrier is a propagation.TextMapCarrier of one message's trace context.
type carrier [2]string

func (c carrier) Get(key string) string {
	switch key {
	case events.ExtTraceParent:
		return c[0]
	case events.ExtTraceState:
		return c[1]
	}
	return ""
}

func (c carrier) Set(string, string) {}

func (c carrier) Keys() []string { return []string{events.ExtTraceParent, events.ExtTraceState} }

// Outcome records on the span in ctx, if it is one of licensebus's, how
// the step ended when it did not append an event: rejected (with its
// reason), repeated, nothing. A span without it appended one: an
// attribute costs every span an allocation.
func Outcome(ctx context.Context, outcome string, reason events.Reason) {
	s := trace.SpanFromContext(ctx)
	if !s.IsRecording() {
		return
	}
	s.SetAttributes(AttrOutcome.String(outcome))
	if reason != "" {
		s.SetAttributes(AttrReason.String(string(reason)))
	}
}
