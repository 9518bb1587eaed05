package devices

import (
	"fmt"
	"testing"

	"github.com/licensebus/licensebus/events"
)

// What the runner pays per device event. Run with:
// go test -run '^$' -bench . ./projections/devices/

func benchEvent(b *testing.B, t events.Type, d events.Data, i int) *events.Message {
	b.Helper()
	m, err := events.New(t, d, events.Meta{ID: fmt.Sprintf("30000000-0000-4000-8000-%012d", i), Source: events.DeviceSource})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchServer(b *testing.B, m *Model, ic string, devs int) []string {
	b.Helper()
	m.Apply(1, benchEvent(b, events.RegisteredType, &events.Registered{InstallCode: ic, Version: "3.4"}, 0))
	nd := make([]events.NewDevice, devs)
	ids := make([]string, devs)
	for i := range nd {
		ids[i] = fmt.Sprintf("40000000-0000-4000-8000-%012d", i)
		nd[i] = events.NewDevice{DeviceID: ids[i], Name: "d", Protocol: events.LON}
	}
	m.Apply(2, benchEvent(b, events.DevicesAddedType, &events.DevicesAdded{InstallCode: ic, Devices: nd}, 1))
	return ids
}

// BenchmarkApplyDevicesProvisioned: a 50-device provisioning batch on a
// SmartServer with 50 devices, then taking it back (transfer), per op.
func BenchmarkApplyDevicesProvisioned(b *testing.B) {
	m := New()
	ids := benchServer(b, m, "SS-B", 50)
	lic := benchEvent(b, events.LicenseActivatedType, &events.LicenseActivated{InstallCode: "SS-B", LicenseID: "50000000-0000-4000-8000-000000000001", Kind: events.Capacity, Devices: 50}, 2)
	prov := benchEvent(b, events.DevicesProvisionedType, &events.DevicesProvisioned{InstallCode: "SS-B", DeviceIDs: ids}, 3)
	back := benchEvent(b, events.LicensesTransferredType, &events.LicensesTransferred{InstallCode: "SS-B", LicenseIDs: []string{"50000000-0000-4000-8000-000000000001"}}, 4)
	seq := uint64(10)
	b.ReportAllocs()
	for b.Loop() {
		m.Apply(seq, lic)
		m.Apply(seq+1, prov)
		m.Apply(seq+2, back)
		seq += 3
		m.EachChange(func(string, []byte) {}) // the runner's flush, keeping nothing (a replay)
	}
}
