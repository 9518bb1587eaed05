package events_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/licensebus/licensebus/events"
)

// The hot paths of the codec, on the event every activation ends with. A
// handler builds it (New), appends it (NATS); every fold and the projections
// decode it (Decode). Run with: go test -run '^$' -bench . ./events/

func activatedEvent(b *testing.B) *events.Message {
	return mustNew(b, events.LicenseActivatedType, activated(),
		events.Meta{ID: eventID, Source: events.DeviceSource + "/" + installCd, CorrelationID: commandID, CausationID: commandID, Actor: "alice", Time: at})
}

func activated() *events.LicenseActivated {
	return &events.LicenseActivated{InstallCode: installCd, LicenseID: licenseID, Kind: events.Capacity, Devices: 200, ActivatedAt: at}
}

func BenchmarkNew(b *testing.B) {
	meta := events.Meta{ID: eventID, Source: events.DeviceSource + "/" + installCd, CorrelationID: commandID, CausationID: commandID, Actor: "alice", Time: at}
	data := activated()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.New(events.LicenseActivatedType, data, meta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNATS(b *testing.B) {
	m := activatedEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.NATS()
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	msg := activatedEvent(b).NATS()
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(msg.Header, msg.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStructured(b *testing.B) {
	body, err := activatedEvent(b).CloudEvent().MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	h := nats.Header{"Content-Type": {"application/cloudevents+json"}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateCommand: command validation alone, as a handler pays it
// on every command it screens.
func BenchmarkValidateCommand(b *testing.B) {
	d := &events.AddDevices{InstallCode: "SS-1", Devices: make([]events.NewDevice, 50)}
	for i := range d.Devices {
		d.Devices[i] = events.NewDevice{DeviceID: fmt.Sprintf("40000000-0000-4000-8000-%012d", i), Name: "d", Protocol: events.BACnet}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
