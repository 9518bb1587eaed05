package licensing

import (
	"fmt"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
)

// What the projections runner does per event, for the events of an
// activation and of a license purchase. Run with:
// go test -run '^$' -bench . ./projections/licensing/

const (
	benchCustomer = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	benchServer   = "SS-BENCH"
	benchPool     = 1024 // licenses cycled through, so the maps stay a realistic size
)

var benchAt = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

func benchLicense(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func mustEvent(b *testing.B, t events.Type, d events.Data, id int) *events.Message {
	b.Helper()
	cmd := fmt.Sprintf("10000000-0000-4000-8000-%012d", id)
	m, err := events.New(t, d, events.Meta{ID: fmt.Sprintf("20000000-0000-4000-8000-%012d", id), Source: events.DeviceSource,
		CorrelationID: cmd, CausationID: cmd, Actor: "bench", Time: benchAt})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func added(b *testing.B, i int) *events.Message {
	return mustEvent(b, events.LicenseAddedType, &events.LicenseAdded{LicenseID: benchLicense(i), CustomerID: benchCustomer,
		Kind: events.Capacity, Devices: 200, AddedAt: benchAt}, i)
}

func BenchmarkModelApplyLicenseAdded(b *testing.B) {
	msgs := make([]*events.Message, benchPool)
	for i := range msgs {
		msgs[i] = added(b, i)
	}
	m := New(nil)
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		m.Apply(seq, msgs[seq%benchPool]) // a later sequence replaces the license
	}
}

func BenchmarkModelApplyLicenseActivated(b *testing.B) {
	m := New(nil)
	seq := uint64(1)
	m.Apply(seq, mustEvent(b, events.RegisteredType, &events.Registered{InstallCode: benchServer, Name: "SC-1", Version: "3.4"}, benchPool))
	msgs := make([]*events.Message, benchPool)
	for i := range msgs {
		seq++
		m.Apply(seq, added(b, i))
		msgs[i] = mustEvent(b, events.LicenseActivatedType, &events.LicenseActivated{InstallCode: benchServer, LicenseID: benchLicense(i),
			Kind: events.Capacity, Devices: 200, ActivatedAt: benchAt}, benchPool+1+i)
	}
	b.ReportAllocs()
	for b.Loop() {
		seq++
		m.Apply(seq, msgs[seq%benchPool])
	}
}

func BenchmarkOutcomesApply(b *testing.B) {
	msgs := make([]*events.Message, benchPool)
	for i := range msgs {
		msgs[i] = mustEvent(b, events.LicenseActivatedType, &events.LicenseActivated{InstallCode: benchServer, LicenseID: benchLicense(i),
			Kind: events.Capacity, Devices: 200, ActivatedAt: benchAt}, i)
	}
	o := NewOutcomes()
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		i := seq % benchPool
		if i == 0 {
			o.Reset() // every correlation id again has no outcome yet
		}
		o.Apply(seq, msgs[i])
		if seq%2048 == 0 {
			// The runner's flush takes them; in a replay it keeps none.
			o.EachChange(func(string, []byte) {})
		}
	}
}
