package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedCLI runs the CLI in process as cli does, its spans going to tp.
func tracedCLI(tb testing.TB, tp trace.TracerProvider, url string, args ...string) string {
	tb.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "NATS_URL" {
			return url
		}
		return ""
	}}
	a.tracing.provider = tp
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		tb.Fatalf("licensebus %s: %v (stderr %q)", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// Ensure one activation is one trace, from the CLI command to the read
// models: the CLI's command and its send, the device side handling the
// command, the cloud reacting to the request, the device side recording
// the binding, and each event applied to the projections; and that the
// events it wrote carry that trace in their traceparent.
func TestActivationIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), Telemetry: TelemetryConfig{TracerProvider: tp}})
	url := s.URL()

	cid := tracedCLI(t, tp, url, "customer", "create", "--name", "P2022-0208")
	capID := tracedCLI(t, tp, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "200")
	tracedCLI(t, tp, url, "smartserver", "register", "--install-code", "IC-0001", "--name", "SC-01", "--version", "3.4")
	tracedCLI(t, tp, url, "smartserver", "set-customer-id", "IC-0001", cid)
	tracedCLI(t, tp, url, "smartserver", "download-licenses", "IC-0001")
	exp.Reset()
	tracedCLI(t, tp, url, "smartserver", "activate", "IC-0001", capID)

	// The projections apply the last event after the outcome is visible
	// to the CLI at the earliest: wait for its span.
	var spans tracetest.SpanStubs
	waitFor(t, func() bool {
		spans = exp.GetSpans()
		for _, sp := range spans {
			if sp.Name == "project smartserver.license_activated" {
				return true
			}
		}
		return false
	})
	var root *tracetest.SpanStub
	for i := range spans {
		if spans[i].Name == "licensebus smartserver activate" {
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no span of the CLI command among %v", names(spans))
	}
	tid := root.SpanContext.TraceID()
	inTrace := map[trace.SpanID]tracetest.SpanStub{}
	for _, sp := range spans {
		if sp.SpanContext.TraceID() == tid {
			inTrace[sp.SpanContext.SpanID()] = sp
		}
	}
	for _, want := range []string{
		"licensebus smartserver activate",
		"send smartserver.activate_license",
		"handle smartserver.activate_license",
		"project smartserver.activation_requested",
		"handle smartserver.activation_requested",
		"project license.bound",
		"handle license.bound",
		"project smartserver.license_activated",
	} {
		found := false
		for _, sp := range inTrace {
			found = found || sp.Name == want
		}
		if !found {
			t.Errorf("trace %s has no span %q; it has %v", tid, want, names(values(inTrace)))
		}
	}
	// One tree: every span but the root has its parent in the trace.
	for _, sp := range inTrace {
		if sp.SpanContext.SpanID() == root.SpanContext.SpanID() {
			if sp.Parent.IsValid() {
				t.Errorf("the CLI's span has a parent %s", sp.Parent.SpanID())
			}
			continue
		}
		if _, ok := inTrace[sp.Parent.SpanID()]; !ok {
			t.Errorf("span %q: parent %s is not in the trace", sp.Name, sp.Parent.SpanID())
		}
	}

	// The events carry the trace.
	_, js := mustClient(t, url)
	for _, typ := range []events.Type{events.ActivationRequestedType, events.LicenseBoundType, events.LicenseActivatedType} {
		info, _ := events.Lookup(typ)
		var m *events.Message
		for _, e := range streamEvents(t, js, "lb.evt."+info.Aggregate+".*."+info.Verb) {
			m = e
		}
		if m == nil {
			t.Fatalf("no %s event", typ)
		}
		if got := tracing.TraceID(m.TraceParent()); got != tid.String() {
			t.Errorf("%s traceparent %q: trace %q, want %s", typ, m.TraceParent(), got, tid)
		}
	}
}

// Ensure a command sent without a tracer still starts a trace, and the
// events it causes continue it.
func TestTraceContextWithoutTracer(t *testing.T) {
	s := mustServe(t, t.TempDir())
	mustCLI(t, s.URL(), "smartserver", "register", "--install-code", "IC-0001", "--name", "SC-01", "--version", "3.4")
	_, js := mustClient(t, s.URL())
	str, err := js.Stream(ctxFor(t, 5*time.Second), events.CommandsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := str.GetLastMsgForSubject(ctxFor(t, 5*time.Second), "lb.cmd.device.IC-0001.register")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := events.Decode(raw.Header, raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	evs := streamEvents(t, js, "lb.evt.smartserver.IC-0001.registered")
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	tid := tracing.TraceID(cmd.TraceParent())
	if tid == "" {
		t.Fatalf("command traceparent %q, want a valid one", cmd.TraceParent())
	}
	if got := tracing.TraceID(evs[0].TraceParent()); got != tid {
		t.Fatalf("event in trace %q, want the command's %s", got, tid)
	}
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, sp := range spans {
		out[i] = sp.Name
	}
	return out
}

func values(m map[trace.SpanID]tracetest.SpanStub) tracetest.SpanStubs {
	out := make(tracetest.SpanStubs, 0, len(m))
	for _, sp := range m {
		out = append(out, sp)
	}
	return out
}

// Ensure `audit trace` shows the command's W3C trace id beside its
// correlation id, and the entries keep the traceparent.
func TestAuditTraceShowsTraceID(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, js := mustClient(t, url)
	out := mustDo(t, c, events.RegisterType, &events.Register{InstallCode: "IC-0001", Name: "SC-01", Version: "3.4"})
	evs := streamEvents(t, js, "lb.evt.smartserver.IC-0001.registered")
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	tid := tracing.TraceID(evs[0].TraceParent())
	waitAudited(t, js)
	text := mustCLI(t, url, "audit", "trace", out.CorrelationID)
	first, _, _ := strings.Cut(text, "\n")
	if !strings.Contains(first, "corr="+out.CorrelationID) || !strings.Contains(first, "trace="+tid) {
		t.Fatalf("audit trace first line %q, want corr=%s and trace=%s", first, out.CorrelationID, tid)
	}
	var tree []struct {
		TraceParent string `json:"traceparent"`
	}
	mustJSON(t, url, &tree, "audit", "trace", out.CorrelationID)
	if len(tree) != 1 || tracing.TraceID(tree[0].TraceParent) != tid {
		t.Fatalf("audit trace -o json %+v, want the command's traceparent in trace %s", tree, tid)
	}
}
