package tracing_test

import (
	"context"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func message(t *testing.T, meta events.Meta) *events.Message {
	t.Helper()
	meta.ID, meta.Source = "0f8fad5b-d9cb-469f-a165-70867728950e", events.DeviceSource
	m, err := events.New(events.RegisteredType, &events.Registered{InstallCode: "IC-1", Name: "SC", Version: "3.4"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Ensure a new trace's traceparent is valid W3C, sampled, and new each time.
func TestNewTraceParent(t *testing.T) {
	a, b := tracing.NewTraceParent(), tracing.NewTraceParent()
	if len(a) != 55 || a[:3] != "00-" || a[52:] != "-01" || tracing.TraceID(a) == "" {
		t.Fatalf("traceparent %q, want 00-<32 hex>-<16 hex>-01", a)
	}
	if tracing.TraceID(a) == tracing.TraceID(b) {
		t.Fatalf("two new traces share id %s", tracing.TraceID(a))
	}
	for _, bad := range []string{"", "00-abc-def-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "zz"} {
		if got := tracing.TraceID(bad); got != "" {
			t.Errorf("TraceID(%q)=%q, want none", bad, got)
		}
	}
}

// Ensure Inject: the span in ctx wins, else the meta keeps its own, else
// a new trace.
func TestInject(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{1}, SpanID: [8]byte{2}, TraceFlags: trace.FlagsSampled})
	withSpan := trace.ContextWithSpanContext(context.Background(), sc)
	tests := []struct {
		name string
		ctx  context.Context
		meta events.Meta
		want func(string) bool
	}{
		{"span in ctx", withSpan, events.Meta{TraceParent: tp}, func(got string) bool {
			return got == "00-01000000000000000000000000000000-0200000000000000-01"
		}},
		{"the cause's", context.Background(), events.Meta{TraceParent: tp}, func(got string) bool { return got == tp }},
		{"none: a new trace", context.Background(), events.Meta{}, func(got string) bool { return tracing.TraceID(got) != "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := tt.meta
			tracing.Inject(tt.ctx, &meta)
			if !tt.want(meta.TraceParent) {
				t.Fatalf("TraceParent=%q", meta.TraceParent)
			}
			m := message(t, tt.meta)
			tracing.Link(tt.ctx, m)
			if !tt.want(m.TraceParent()) {
				t.Fatalf("Link: TraceParent=%q", m.TraceParent())
			}
		})
	}
}

// Ensure a step's span continues the message's trace, and a nil Tracer
// makes none and changes nothing.
func TestStep(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	m := message(t, events.Meta{TraceParent: tp})
	var off *tracing.Tracer
	ctx := context.Background()
	if got, span := off.Step(ctx, "handle", m, 0); got != ctx || span != (tracing.Span{}) {
		t.Fatal("a nil Tracer started a span")
	}
	exp := tracetest.NewInMemoryExporter()
	tp2 := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	_, span := tracing.New(tp2).Step(ctx, "handle", m, 7)
	span.End(nil)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "handle smartserver.registered" || s.SpanContext.TraceID().String() != tracing.TraceID(tp) ||
		s.Parent.SpanID().String() != "00f067aa0ba902b7" || s.SpanKind != trace.SpanKindConsumer {
		t.Fatalf("span %q trace %s parent %s kind %v, want handle smartserver.registered in the message's trace",
			s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), s.SpanKind)
	}
}
