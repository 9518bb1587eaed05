package events_test

import (
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/licensebus/licensebus/events"
)

// fuzzHeader turns the flat fuzz arguments back into NATS headers. A
// Content-Type of application/cloudevents... selects structured mode; any
// other goes in as the binary-mode data content type.
func fuzzHeader(ceType, ceID, ceSource, ceTime, contentType string) nats.Header {
	h := nats.Header{"ce-specversion": {event.CloudEventsVersionV1}}
	for name, v := range map[string]string{"ce-type": ceType, "ce-id": ceID, "ce-source": ceSource, "ce-time": ceTime, "Content-Type": contentType} {
		if v != "" {
			h[name] = []string{v}
		}
	}
	return h
}

func FuzzDecode(f *testing.F) {
	// Seed with real encodings so the fuzzer starts from inputs that get
	// past the envelope and into data decoding.
	seeds := []struct {
		typ  events.Type
		data events.Data
	}{
		{events.ActivateLicenseType, &events.ActivateLicense{InstallCode: installCd, LicenseID: licenseID}},
		{events.AddLicenseType, &events.AddLicense{CustomerID: customerID, Kind: events.Maintenance, Devices: 5, Expires: "2025-01-31"}},
		{events.RegisterType, &events.Register{InstallCode: installCd, Name: "Building 7", Version: "3.4"}},
		{events.TransferRequestedType, &events.TransferRequested{InstallCode: installCd, LicenseIDs: []string{licenseID}}},
		{events.RejectedType, &events.Rejected{Reason: events.ReasonBadUUID, Message: "bad", Aggregate: "license", ID: "x"}},
	}
	for _, s := range seeds {
		m := mustNew(f, s.typ, s.data, events.Meta{ID: commandID, Source: "/licensebus/naïve user", Actor: "alice", Time: at})
		msg := m.EncodeBinary()
		h := nats.Header(msg.Header)
		f.Add(h.Get("ce-type"), h.Get("ce-id"), h.Get("ce-source"), h.Get("ce-time"), h.Get("ce-datacontenttype"), msg.Data)
	}

	e := event.New()
	e.SetID(commandID)
	e.SetSource("/other/client")
	e.SetType(string(events.DownloadLicensesType))
	e.SetTime(at)
	e.SetExtension(events.ExtActor, "bob")
	if err := e.SetData(event.ApplicationJSON, &events.DownloadLicenses{InstallCode: installCd}); err != nil {
		f.Fatalf("SetData=%v, want nil", err)
	}
	body, err := e.MarshalJSON()
	if err != nil {
		f.Fatalf("MarshalJSON=%v, want nil", err)
	}
	f.Add("", "", "", "", "application/cloudevents+json", body)
	for _, s := range seeds[:2] {
		m := mustNew(f, s.typ, s.data, events.Meta{ID: commandID, Source: "/licensebus/cli", CorrelationID: commandID, Actor: "alice", Time: at,
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "lb=1"})
		f.Add("", "", "", "", "application/cloudevents+json", m.Encode().Data)
	}

	// Inputs that once broke Decode or its round trip: sdk-go panicking on
	// a non-string data_base64, structured specversion 0.3, a content type
	// needing percent-encoding, and times that re-encode past year 9999.
	dt := string(events.DownloadLicensesType)
	f.Add("", "", "", "", "application/cloudevents+json", []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"`+dt+`","data_base64":1}`))
	f.Add("", "", "", "", "application/cloudevents+json", []byte(`{"data_base64":1,"specversion":"1.0","id":"x","source":"/s","type":"`+dt+`"}`))
	f.Add("", "", "", "", "application/cloudevents+json", []byte(`{"specversion":"0.3","id":"x","source":"/s","type":"`+dt+`","datacontenttype":"application/json","data":{"install_code":"SS-1"}}`))
	f.Add(dt, "x", "/s", "", "application/json%25", []byte(`{"install_code":"SS-1"}`))
	f.Add(dt, "x", "/s", "9999-12-31T23:30:00-01:00", "application/json", []byte(`{"install_code":"SS-1"}`))
	f.Add(dt, "x", "/s", "0000-01-01T00:30:00+01:00", "application/json", []byte(`{"install_code":"SS-1"}`))

	f.Fuzz(func(t *testing.T, ceType, ceID, ceSource, ceTime, contentType string, body []byte) {
		h := fuzzHeader(ceType, ceID, ceSource, ceTime, contentType)
		m, err := events.Decode(h, body)
		if err != nil {
			// Handlers turn the error into a Rejected event, which only
			// works for a *Rejection.
			if events.AsRejection(err) == nil {
				t.Fatalf("Decode err=%T %v, want *events.Rejection", err, err)
			}
			return
		}
		if m.Data == nil {
			t.Fatalf("Data=nil, want decoded data")
		}
		if err := m.Data.Validate(); err != nil {
			t.Fatalf("Data.Validate()=%v, want nil", err)
		}
		if err := m.Event.Validate(); err != nil {
			t.Fatalf("Event.Validate()=%v, want nil", err)
		}
		// What we accepted we must be able to forward: re-encode in either
		// mode and read it back.
		for _, msg := range []events.Msg{m.Encode(), m.EncodeBinary()} {
			m2, err := events.Decode(msg.Header, msg.Data)
			if err != nil {
				t.Fatalf("re-Decode=%v, want nil (headers %q, body %q)", err, msg.Header, msg.Data)
			}
			if m2.ID() != m.ID() {
				t.Fatalf("re-Decode ID=%q, want %q", m2.ID(), m.ID())
			}
			if m2.Type() != m.Type() {
				t.Fatalf("re-Decode Type=%v, want %v", m2.Type(), m.Type())
			}
			if m2.CorrelationID() != m.CorrelationID() || m2.CausationID() != m.CausationID() || m2.Actor() != m.Actor() ||
				m2.TraceParent() != m.TraceParent() || m2.TraceState() != m.TraceState() {
				t.Fatalf("re-Decode extensions %q %q %q, want %q %q %q", m2.CorrelationID(), m2.CausationID(), m2.Actor(),
					m.CorrelationID(), m.CausationID(), m.Actor())
			}
			if strings.TrimSpace(msg.Subject) == "" {
				t.Fatalf("NATS subject empty, want one")
			}
		}
	})
}
