package events_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/licensebus/licensebus/events"
)

// The hot paths of the codec, on the event every activation ends with. A
// handler builds it (New), appends it (Encode); every fold and the projections
// receive and decode it (Receive, Decode). Run with: go test -run '^$' -bench . ./events/

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

func BenchmarkEncode(b *testing.B) {
	m := activatedEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Encode()
	}
}

func BenchmarkBinary(b *testing.B) {
	m := activatedEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.EncodeBinary()
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	benchDecode(b, activatedEvent(b).EncodeBinary())
}

func BenchmarkDecodeStructured(b *testing.B) {
	benchDecode(b, activatedEvent(b).Encode())
}

func benchDecode(b *testing.B, msg events.Msg) {
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(msg.Header, msg.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceive is what every reader of an event pays: nats.go parsing
// the headers as stored (the append's expected-sequence headers included),
// then Decode.
func BenchmarkReceive(b *testing.B) {
	for _, mode := range []struct {
		name string
		msg  events.Msg
	}{{"binary", activatedEvent(b).EncodeBinary()}, {"structured", activatedEvent(b).Encode()}} {
		b.Run(mode.name, func(b *testing.B) {
			block := []byte("NATS/1.0\r\n")
			for k, vs := range mode.msg.Header {
				block = fmt.Appendf(block, "%s: %s\r\n", k, vs[0])
			}
			block = fmt.Appendf(block, "Nats-Expected-Last-Subject-Sequence: 123456\r\nNats-Expected-Last-Subject-Sequence-Subject: lb.evt.smartserver.%s.>\r\n\r\n", installCd)
			b.SetBytes(int64(len(block) + len(mode.msg.Data)))
			b.ReportAllocs()
			for b.Loop() {
				h, err := nats.DecodeHeadersMsg(block)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := events.Decode(h, mode.msg.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
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
