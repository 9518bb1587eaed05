package events

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The fast path builds exactly the event sdk-go's setters and Validate
// build from the same headers, or declines.
func TestPlainEventMatchesGeneral(t *testing.T) {
	at := time.Date(2026, 11, 26, 4, 5, 6, 789, time.UTC)
	base := func() nats.Header {
		m, err := New(LicenseActivatedType, &LicenseActivated{InstallCode: "SS-1", LicenseID: "123e4567-e89b-12d3-a456-426614174000",
			Kind: Capacity, Devices: 200, ActivatedAt: at}, Meta{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Source: DeviceSource,
			CorrelationID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", CausationID: "9b2f6c1e-3d4a-4f8b-9c0d-1e2f3a4b5c6d", Actor: "user:ann", Time: at,
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "lb=1,other=x y"})
		if err != nil {
			t.Fatal(err)
		}
		return m.EncodeBinary().Header
	}
	with := func(f func(nats.Header)) nats.Header { h := base(); f(h); return h }
	tests := []struct {
		name  string
		h     nats.Header
		plain bool // the fast path takes it
	}{
		{"a licensebus event", base(), true},
		{"no extensions", with(func(h nats.Header) {
			for _, x := range []string{ExtActor, ExtCorrelationID, ExtCausationID, ExtTraceParent, ExtTraceState} {
				h.Del("ce-" + x)
			}
		}), true},
		{"no subject", with(func(h nats.Header) { h.Del("ce-subject") }), true},
		{"no time", with(func(h nats.Header) { h.Del("ce-time") }), true},
		{"zero time", with(func(h nats.Header) { h.Set("ce-time", "0001-01-01T00:00:00Z") }), true},
		{"time with an offset", with(func(h nats.Header) { h.Set("ce-time", "2026-11-26T05:05:06.5+01:00") }), true},
		{"unknown type", with(func(h nats.Header) { h.Set("ce-type", "com.example.other") }), true},
		{"source with a deeper path", with(func(h nats.Header) { h.Set("ce-source", "/licensebus/device/SS-1_a.b") }), true},
		{"escaped actor", with(func(h nats.Header) { h.Set("ce-actor", "user:ann%20lee") }), true},
		{"mixed-case header names", with(func(h nats.Header) {
			v := h.Get("ce-id")
			delete(h, "ce-id")
			h["CE-ID"] = []string{v}
		}), true},
		{"content type from Content-Type", with(func(h nats.Header) { h.Del("ce-datacontenttype"); h.Set("Content-Type", "application/json") }), true},
		{"source with a scheme", with(func(h nats.Header) { h.Set("ce-source", "https://example.com/x") }), false},
		{"source with an authority", with(func(h nats.Header) { h.Set("ce-source", "//example.com/x") }), false},
		{"relative source", with(func(h nats.Header) { h.Set("ce-source", "licensebus") }), false},
		{"source with an escape", with(func(h nats.Header) { h.Set("ce-source", "/a%20b") }), false},
		{"empty id", with(func(h nats.Header) { h.Set("ce-id", "") }), false},
		{"id with spaces around", with(func(h nats.Header) { h.Set("ce-id", "%20x%20") }), false},
		{"subject with spaces around", with(func(h nats.Header) { h.Set("ce-subject", "%20x") }), false},
		{"no type", with(func(h nats.Header) { h.Del("ce-type") }), false},
		{"data schema", with(func(h nats.Header) { h.Set("ce-dataschema", "https://example.com/s.json") }), false},
		{"other content type", with(func(h nats.Header) { h.Set("ce-datacontenttype", "application/json; charset=utf-8") }), false},
		{"no content type", with(func(h nats.Header) { h.Del("ce-datacontenttype") }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, other, err := readAttrs(tt.h)
			if err != nil || len(other) != 0 {
				t.Fatalf("readAttrs: %v, other %v", err, other)
			}
			if a.dct == "" {
				a.dct = a.ct
			}
			var at time.Time
			if a.tm != "" {
				if at, err = time.Parse(time.RFC3339Nano, a.tm); err != nil {
					t.Fatal(err)
				}
			}
			body := []byte(`{}`)
			got, ok := a.plainEvent(at, body)
			if ok != tt.plain {
				t.Fatalf("fast path = %v, want %v", ok, tt.plain)
			}
			if !ok {
				return
			}
			want, err := a.general(nil, at, body)
			if err != nil {
				t.Fatalf("the general path refuses what the fast path took: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fast path:\n%#v\ngeneral:\n%#v", got.Context, want.Context)
			}
		})
	}
}

// New builds through the fast path exactly what the setters build.
func TestNewMatchesGeneral(t *testing.T) {
	at := time.Date(2026, 11, 26, 4, 5, 6, 789, time.UTC)
	data := &LicenseActivated{InstallCode: "SS-1", LicenseID: "123e4567-e89b-12d3-a456-426614174000", Kind: Capacity, Devices: 200, ActivatedAt: at}
	full := Meta{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Source: DeviceSource, CorrelationID: "c", CausationID: "d", Actor: "user:ann", Time: at,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "lb=1"}
	with := func(f func(*Meta)) Meta { m := full; f(&m); return m }
	tests := []struct {
		name string
		meta Meta
	}{
		{"every attribute", full},
		{"no extensions", with(func(m *Meta) {
			m.CorrelationID, m.CausationID, m.Actor, m.TraceParent, m.TraceState = "", "", "", "", ""
		})},
		{"only a trace context", with(func(m *Meta) { m.CorrelationID, m.CausationID, m.Actor = "", "", "" })},
		{"only an actor", with(func(m *Meta) { m.CorrelationID, m.CausationID = "", "" })},
		{"a URN source (general path)", with(func(m *Meta) { m.Source = "urn:licensebus:x" })},
		{"id with a space around (general path)", with(func(m *Meta) { m.ID = " x" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(LicenseActivatedType, data, tt.meta)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := Lookup(LicenseActivatedType)
			want, err := buildGeneral(info, data, tt.meta, tt.meta.Time, got.Event.DataEncoded)
			if err != nil {
				t.Fatal(err)
			}
			if got.exts != want.exts {
				t.Errorf("extensions %+v, want %+v", got.exts, want.exts)
			}
			if !reflect.DeepEqual(got.Event, want.Event) { // (Info holds a func, which DeepEqual never matches)
				t.Errorf("fast path:\n%#v\ngeneral:\n%#v", got.Event.Context, want.Event.Context)
			}
		})
	}
	if _, err := New(LicenseActivatedType, data, with(func(m *Meta) { m.ID = "" })); err == nil {
		t.Error("New accepted an empty id")
	}
}

// licensebus's extensions travel beside the CloudEvent in a Message, and
// whole on the wire and in CloudEvent, whichever way the event came.
func TestExtensionsBesideTheEvent(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	at := time.Date(2026, 11, 26, 4, 5, 6, 0, time.UTC)
	data := &Registered{InstallCode: "SS-1", Name: "SC", Version: "3.4"}
	meta := Meta{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Source: DeviceSource, CorrelationID: "c1", CausationID: "d1",
		Actor: "user:ann lee", Time: at, TraceParent: tp, TraceState: "lb=1,vendor=a b"}
	built, err := New(RegisteredType, data, meta)
	if err != nil {
		t.Fatal(err)
	}
	whole := built.CloudEvent()
	structured, err := whole.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	binary := built.EncodeBinary()
	tests := []struct {
		name string
		m    func() (*Message, error)
	}{
		{"built", func() (*Message, error) { return built, nil }},
		{"binary mode", func() (*Message, error) { return Decode(binary.Header, binary.Data) }},
		{"structured mode", func() (*Message, error) {
			return Decode(nats.Header{"Content-Type": []string{"application/cloudevents+json"}}, structured)
		}},
		{"structured mode as licensebus writes it", func() (*Message, error) {
			msg := built.Encode()
			return Decode(msg.Header, msg.Data)
		}},
		{"binary mode with a foreign extension", func() (*Message, error) {
			h := nats.Header{}
			for k, v := range binary.Header {
				h[k] = v
			}
			h.Set("ce-partitionkey", "SS-1")
			return Decode(h, binary.Data)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.m()
			if err != nil {
				t.Fatal(err)
			}
			if m.CorrelationID() != "c1" || m.CausationID() != "d1" || m.Actor() != "user:ann lee" {
				t.Errorf("correlation %q, causation %q, actor %q", m.CorrelationID(), m.CausationID(), m.Actor())
			}
			if m.TraceParent() != tp || m.TraceState() != "lb=1,vendor=a b" {
				t.Errorf("traceparent %q, tracestate %q", m.TraceParent(), m.TraceState())
			}
			if next := m.Next("x", DeviceSource, "a"); next.TraceParent != tp || next.TraceState != m.TraceState() {
				t.Errorf("Next: trace context %q %q, want the cause's", next.TraceParent, next.TraceState)
			}
			for _, name := range []string{ExtCorrelationID, ExtCausationID, ExtActor, ExtTraceParent, ExtTraceState} {
				if _, ok := m.Event.Extensions()[name]; ok {
					t.Errorf("%s also in the event's context", name)
				}
				if got := m.CloudEvent().Extensions()[name]; got == nil {
					t.Errorf("CloudEvent without %s", name)
				}
			}
			h := nats.Header(m.EncodeBinary().Header)
			if h.Get("ce-correlationid") != "c1" || h.Get("ce-causationid") != "d1" || h.Get("ce-actor") != "user:ann%20lee" ||
				h.Get("ce-traceparent") != tp || h.Get("ce-tracestate") != "lb=1,vendor=a%20b" {
				t.Errorf("headers %v", h)
			}
			if tt.name == "binary mode with a foreign extension" && h.Get("ce-partitionkey") != "SS-1" {
				t.Errorf("foreign extension lost: %v", h)
			}
			msg := m.Encode()
			back, err := Decode(msg.Header, msg.Data)
			if err != nil {
				t.Fatalf("structured: %v", err)
			}
			if back.exts != m.exts || !reflect.DeepEqual(back.Event.Extensions(), m.Event.Extensions()) {
				t.Errorf("structured: extensions %+v %v, want %+v %v", back.exts, back.Event.Extensions(), m.exts, m.Event.Extensions())
			}
		})
	}
}
