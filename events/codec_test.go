package events_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/licensebus/licensebus/events"
)

const (
	customerID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	licenseID  = "123e4567-e89b-12d3-a456-426614174000"
	licenseID2 = "9b2f6c1e-3d4a-4f8b-9c0d-1e2f3a4b5c6d"
	commandID  = "0f8fad5b-d9cb-469f-a165-70867728950e"
	eventID    = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	installCd  = "SS-0001_a"
)

// at is a fixed UTC instant so times compare equal after a JSON round trip.
var at = time.Date(2024, 3, 1, 9, 30, 15, 123456789, time.UTC)

// mustNew builds a message or stops the test.
func mustNew(t testing.TB, typ events.Type, data events.Data, meta events.Meta) *events.Message {
	t.Helper()
	m, err := events.New(typ, data, meta)
	if err != nil {
		t.Fatalf("New(%s)=%v, want nil", typ, err)
	}
	return m
}

// activateMsg is the valid binary-mode message the bad-input cases start from.
func activateMsg(t testing.TB) events.Msg {
	t.Helper()
	return mustNew(t, events.ActivateLicenseType,
		&events.ActivateLicense{InstallCode: installCd, LicenseID: licenseID},
		events.Meta{ID: commandID, Source: "/licensebus/cli", Actor: "alice", Time: at}).EncodeBinary()
}

func TestRoundTrip(t *testing.T) {
	cmdMeta := events.Meta{ID: commandID, Source: "/licensebus/cli", Actor: "alice", Time: at}
	evtMeta := events.Meta{ID: eventID, Source: events.CloudSource, CorrelationID: commandID, CausationID: commandID, Actor: "cloud-handler", Time: at}
	tests := []struct {
		name string
		typ  events.Type
		data events.Data
		meta events.Meta
	}{
		{"create customer", events.CreateCustomerType, &events.CreateCustomer{CustomerID: customerID, Name: "Acme Corp"}, cmdMeta},
		{"add maintenance license", events.AddLicenseType, &events.AddLicense{LicenseID: licenseID, CustomerID: customerID, Kind: events.Maintenance, Devices: 10, Expires: "2025-01-31"}, cmdMeta},
		{"register", events.RegisterType, &events.Register{InstallCode: installCd, Name: "Building 7", Version: "3.4"}, cmdMeta},
		{"activate license", events.ActivateLicenseType, &events.ActivateLicense{InstallCode: installCd, LicenseID: licenseID}, cmdMeta},
		{"transfer to cloud", events.TransferToCloudType, &events.TransferToCloud{InstallCode: installCd}, cmdMeta},
		{"license bound", events.LicenseBoundType, &events.LicenseBound{LicenseID: licenseID, CustomerID: customerID, InstallCode: installCd, Kind: events.Capacity, Devices: 200, BoundAt: at}, evtMeta},
		{"customer id set", events.CustomerIDSetType, &events.CustomerIDSet{InstallCode: installCd, CustomerID: customerID, Previous: licenseID2}, evtMeta},
		{"transfer requested", events.TransferRequestedType, &events.TransferRequested{InstallCode: installCd, LicenseIDs: []string{licenseID, licenseID2}}, evtMeta},
		{"rejected", events.RejectedType, &events.Rejected{CommandID: commandID, CommandType: string(events.ActivateLicenseType), Reason: events.ReasonUnknownLicense, Message: "no such license", Aggregate: "smartserver", ID: installCd}, evtMeta},
	}
	modes := []struct {
		name   string
		encode func(*events.Message) events.Msg
	}{{"structured", (*events.Message).Encode}, {"binary", (*events.Message).EncodeBinary}}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				roundTrip(t, mustNew(t, tt.typ, tt.data, tt.meta), mode.encode, tt.typ, tt.data, tt.meta)
			})
		}
	}
}

func roundTrip(t *testing.T, m *events.Message, encode func(*events.Message) events.Msg, typ events.Type, data events.Data, meta events.Meta) {
	t.Helper()
	tt := struct {
		typ  events.Type
		data events.Data
		meta events.Meta
	}{typ, data, meta}
	{
		{
			msg := encode(m)
			got, err := events.Decode(msg.Header, msg.Data)
			if err != nil {
				t.Fatalf("Decode=%v, want nil", err)
			}
			if got.ID() != tt.meta.ID {
				t.Fatalf("ID=%v, want %v", got.ID(), tt.meta.ID)
			}
			if got.Type() != tt.typ {
				t.Fatalf("Type=%v, want %v", got.Type(), tt.typ)
			}
			if got.Event.Source() != tt.meta.Source {
				t.Fatalf("Source=%v, want %v", got.Event.Source(), tt.meta.Source)
			}
			if got.Event.Subject() != tt.data.Key() {
				t.Fatalf("CloudEvent subject=%v, want %v", got.Event.Subject(), tt.data.Key())
			}
			// The NATS subject is derived from the decoded data, so it shows
			// the data and Info came back well enough to route the message.
			if got.Subject() != msg.Subject {
				t.Fatalf("NATS subject=%v, want %v", got.Subject(), msg.Subject)
			}
			if !got.Event.Time().Equal(at) {
				t.Fatalf("Time=%v, want %v", got.Event.Time(), at)
			}
			// CorrelationID falls back to the id, so compare with what the
			// sender would have read, not with the raw Meta field.
			if got.CorrelationID() != m.CorrelationID() {
				t.Fatalf("CorrelationID=%v, want %v", got.CorrelationID(), m.CorrelationID())
			}
			if got.CausationID() != tt.meta.CausationID {
				t.Fatalf("CausationID=%v, want %v", got.CausationID(), tt.meta.CausationID)
			}
			if got.Actor() != tt.meta.Actor {
				t.Fatalf("Actor=%v, want %v", got.Actor(), tt.meta.Actor)
			}
			if got.Info.Type != tt.typ {
				t.Fatalf("Info.Type=%v, want %v", got.Info.Type, tt.typ)
			}
			if !reflect.DeepEqual(got.Data, tt.data) {
				t.Fatalf("Data=%#v, want %#v", got.Data, tt.data)
			}
			// JetStream dedupes on Nats-Msg-Id, so it must be the event id.
			if id := nats.Header(msg.Header).Get(events.MsgIDHeader); id != tt.meta.ID {
				t.Fatalf("Nats-Msg-Id=%v, want %v", id, tt.meta.ID)
			}
		}
	}
}

func TestDecodeStructured(t *testing.T) {
	want := &events.ActivateLicense{InstallCode: installCd, LicenseID: licenseID}
	e := event.New()
	e.SetID(commandID)
	e.SetSource("/other/client")
	e.SetType(string(events.ActivateLicenseType))
	e.SetSubject(installCd)
	e.SetTime(at)
	e.SetExtension(events.ExtCorrelationID, commandID)
	e.SetExtension(events.ExtActor, "bob")
	if err := e.SetData(event.ApplicationJSON, want); err != nil {
		t.Fatalf("SetData=%v, want nil", err)
	}
	body, err := e.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON=%v, want nil", err)
	}

	for _, ct := range []string{"application/cloudevents+json", "application/cloudevents+json; charset=utf-8", "Application/CloudEvents+JSON"} {
		t.Run(ct, func(t *testing.T) {
			m, err := events.Decode(nats.Header{"Content-Type": {ct}}, body)
			if err != nil {
				t.Fatalf("Decode=%v, want nil", err)
			}
			if m.ID() != commandID {
				t.Fatalf("ID=%v, want %v", m.ID(), commandID)
			}
			if m.Type() != events.ActivateLicenseType {
				t.Fatalf("Type=%v, want %v", m.Type(), events.ActivateLicenseType)
			}
			if m.Event.Source() != "/other/client" {
				t.Fatalf("Source=%v, want %v", m.Event.Source(), "/other/client")
			}
			if m.Actor() != "bob" {
				t.Fatalf("Actor=%v, want %v", m.Actor(), "bob")
			}
			if m.CorrelationID() != commandID {
				t.Fatalf("CorrelationID=%v, want %v", m.CorrelationID(), commandID)
			}
			if !reflect.DeepEqual(m.Data, events.Data(want)) {
				t.Fatalf("Data=%#v, want %#v", m.Data, want)
			}
		})
	}
}

// NATS header names are case-sensitive on the wire, but the binding says ce-*
// names are not, so a producer writing "Ce-Type" must still be understood.
func TestDecodeHeaderCase(t *testing.T) {
	msg := activateMsg(t)
	h := nats.Header{
		"Ce-Specversion":     msg.Header["ce-specversion"],
		"CE-ID":              msg.Header["ce-id"],
		"Ce-Source":          msg.Header["ce-source"],
		"Ce-Type":            msg.Header["ce-type"],
		"CE-SUBJECT":         msg.Header["ce-subject"],
		"Ce-Time":            msg.Header["ce-time"],
		"Ce-DataContentType": msg.Header["ce-datacontenttype"],
		"Ce-Actor":           msg.Header["ce-actor"],
	}
	m, err := events.Decode(h, msg.Data)
	if err != nil {
		t.Fatalf("Decode=%v, want nil", err)
	}
	if m.ID() != commandID {
		t.Fatalf("ID=%v, want %v", m.ID(), commandID)
	}
	if m.Type() != events.ActivateLicenseType {
		t.Fatalf("Type=%v, want %v", m.Type(), events.ActivateLicenseType)
	}
	if m.Actor() != "alice" {
		t.Fatalf("Actor=%v, want %v", m.Actor(), "alice")
	}
	if !m.Event.Time().Equal(at) {
		t.Fatalf("Time=%v, want %v", m.Event.Time(), at)
	}
}

// A plain Content-Type header stands in for ce-datacontenttype in binary mode.
func TestDecodeContentTypeHeader(t *testing.T) {
	msg := activateMsg(t)
	delete(msg.Header, "ce-datacontenttype")
	msg.Header["Content-Type"] = []string{"application/json; charset=utf-8"}
	m, err := events.Decode(msg.Header, msg.Data)
	if err != nil {
		t.Fatalf("Decode=%v, want nil", err)
	}
	if ct := m.Event.DataContentType(); ct != "application/json; charset=utf-8" {
		t.Fatalf("DataContentType=%v, want %v", ct, "application/json; charset=utf-8")
	}
}

func TestPercentEncoding(t *testing.T) {
	const actor = `naïve user "quoted" 100%`
	// Source is a URI-reference, so its '%' must already be an escape; the
	// header encoding has to escape that '%' once more.
	const source = `/licensebus/cli/naïve user "x" 100%25`
	m := mustNew(t, events.ActivateLicenseType,
		&events.ActivateLicense{InstallCode: installCd, LicenseID: licenseID},
		events.Meta{ID: commandID, Source: source, Actor: actor, Time: at})
	msg := m.EncodeBinary()

	for _, name := range []string{"ce-actor", "ce-source"} {
		raw := nats.Header(msg.Header).Get(name)
		if raw == "" {
			t.Fatalf("%s header missing", name)
		}
		for i := 0; i < len(raw); i++ {
			if c := raw[i]; c <= ' ' || c >= 0x7f || c == '"' {
				t.Fatalf("%s=%q has raw byte %q, want it percent-encoded", name, raw, c)
			}
		}
	}
	if raw := nats.Header(msg.Header).Get("ce-actor"); !strings.Contains(raw, "%25") || !strings.Contains(raw, "%20") {
		t.Fatalf("ce-actor=%q, want %%25 and %%20 escapes", raw)
	}

	got, err := events.Decode(msg.Header, msg.Data)
	if err != nil {
		t.Fatalf("Decode=%v, want nil", err)
	}
	if got.Actor() != actor {
		t.Fatalf("Actor=%v, want %v", got.Actor(), actor)
	}
	if got.Event.Source() != m.Event.Source() {
		t.Fatalf("Source=%v, want %v", got.Event.Source(), m.Event.Source())
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		typ    events.Type // ce-type to send; empty keeps activate_license
		mutate func(nats.Header)
		body   string // empty means the valid activate_license body, unless noBody
		noBody bool
		want   events.Reason
	}{
		{name: "no headers", mutate: func(h nats.Header) { clear(h) }, want: events.ReasonMalformed},
		{name: "specversion 0.3", mutate: func(h nats.Header) { h["ce-specversion"] = []string{"0.3"} }, want: events.ReasonMalformed},
		{name: "missing id", mutate: func(h nats.Header) { delete(h, "ce-id") }, want: events.ReasonMalformed},
		{name: "missing source", mutate: func(h nats.Header) { delete(h, "ce-source") }, want: events.ReasonMalformed},
		{name: "bad time", mutate: func(h nats.Header) { h["ce-time"] = []string{"yesterday"} }, want: events.ReasonMalformed},
		{name: "bad percent escape", mutate: func(h nats.Header) { h["ce-actor"] = []string{"bad%zz"} }, want: events.ReasonMalformed},
		{name: "truncated percent escape", mutate: func(h nats.Header) { h["ce-actor"] = []string{"bad%4"} }, want: events.ReasonMalformed},
		{name: "structured not JSON", mutate: func(h nats.Header) { h["Content-Type"] = []string{"application/cloudevents+json"} }, want: events.ReasonMalformed},
		{name: "unknown type", typ: "io.licensebus.smartserver.explode", want: events.ReasonUnknownType},
		{name: "xml data", mutate: func(h nats.Header) { h["ce-datacontenttype"] = []string{"application/xml"} }, want: events.ReasonInvalidData},
		{name: "empty data", noBody: true, want: events.ReasonInvalidData},
		{name: "invalid JSON", body: `{"install_code":`, want: events.ReasonInvalidData},
		{name: "wrong JSON type", body: `{"install_code":42}`, want: events.ReasonInvalidData},
		{name: "license id not a uuid", body: `{"install_code":"SS-0001_a","license_id":"not-a-uuid"}`, want: events.ReasonBadUUID},
		{name: "license id missing", body: `{"install_code":"SS-0001_a"}`, want: events.ReasonInvalidData},
		{name: "bad install code", body: `{"install_code":"bad code!","license_id":"` + licenseID + `"}`, want: events.ReasonBadInstallCode},
		{name: "maintenance without expires", typ: events.AddLicenseType, body: `{"customer_id":"` + customerID + `","kind":"maintenance","devices":5}`, want: events.ReasonInvalidData},
		{name: "maintenance with bad expires", typ: events.AddLicenseType, body: `{"customer_id":"` + customerID + `","kind":"maintenance","devices":5,"expires":"31/01/2025"}`, want: events.ReasonInvalidData},
		{name: "capacity with zero devices", typ: events.AddLicenseType, body: `{"customer_id":"` + customerID + `","kind":"capacity","devices":0}`, want: events.ReasonInvalidData},
		{name: "capacity with expires", typ: events.AddLicenseType, body: `{"customer_id":"` + customerID + `","kind":"capacity","devices":5,"expires":"2025-01-31"}`, want: events.ReasonInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := activateMsg(t)
			h, body := msg.Header, msg.Data
			if tt.typ != "" {
				h["ce-type"] = []string{string(tt.typ)}
			}
			if tt.mutate != nil {
				tt.mutate(h)
			}
			if tt.body != "" {
				body = []byte(tt.body)
			}
			if tt.noBody {
				body = nil
			}
			m, err := events.Decode(h, body)
			if err == nil {
				t.Fatalf("Decode err=nil, want %v", tt.want)
			}
			r := events.AsRejection(err)
			if r == nil {
				t.Fatalf("Decode err=%T %v, want *events.Rejection", err, err)
			}
			if r.Reason != tt.want {
				t.Fatalf("Reason=%v, want %v (%v)", r.Reason, tt.want, err)
			}
			if !errors.Is(err, &events.Rejection{Reason: tt.want}) {
				t.Fatalf("errors.Is(%v, %v)=false, want true", err, tt.want)
			}
			// Past the envelope the message is returned anyway, so the
			// handler can address its Rejected event to the command.
			if tt.want != events.ReasonMalformed {
				if m == nil {
					t.Fatalf("Message=nil, want it filled in for %v", tt.want)
				}
				if m.ID() != commandID {
					t.Fatalf("ID=%v, want %v", m.ID(), commandID)
				}
			}
		})
	}
}

// The sentinels callers branch on must match rejections by reason alone.
func TestSentinels(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		sentinel error
		want     bool
	}{
		{"same reason", events.Reject(events.ReasonBadUUID, "x"), &events.Rejection{Reason: events.ReasonBadUUID}, true},
		{"other reason", events.Reject(events.ReasonBadUUID, "x"), &events.Rejection{Reason: events.ReasonInvalidData}, false},
		{"wrapped", errors.Join(errors.New("ctx"), events.Reject(events.ReasonMalformed, "x")), &events.Rejection{Reason: events.ReasonMalformed}, true},
		{"plain error", errors.New("malformed_event"), &events.Rejection{Reason: events.ReasonMalformed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.sentinel); got != tt.want {
				t.Fatalf("errors.Is=%v, want %v", got, tt.want)
			}
		})
	}
}
