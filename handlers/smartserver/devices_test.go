package smartserver_test

import (
	"fmt"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/smartserver"
)

func colours(t *smartserver.Devices) string {
	s := ""
	for i := range t.Len() {
		s += t.At(i).State.Colour()[:1] // p, b, g
	}
	return s
}

func table(version string, n int) *smartserver.Devices {
	t := &smartserver.Devices{}
	t.SetLicensing(version, 0)
	for i := range n {
		t.Add(fmt.Sprintf("d%d", i), "", events.BACnet)
	}
	return t
}

// Ensure the colour rule: the first capacity devices in order of addition
// are licensed, the rest purple; below 3.3 nothing is purple; transfer
// deprovisions, so the next activation gives blue, not green.
func TestDevicesCapacity(t *testing.T) {
	tests := []struct {
		name string
		run  func(*smartserver.Devices)
		n    int
		ver  string
		want string
	}{
		{"no capacity", func(*smartserver.Devices) {}, 3, "3.4", "ppp"},
		{"capacity 0 on 3.2 needs no license", func(*smartserver.Devices) {}, 3, "3.2", "bbb"},
		{"exactly full", func(t *smartserver.Devices) { t.SetLicensing("3.4", 3) }, 3, "3.4", "bbb"},
		{"over by one", func(t *smartserver.Devices) { t.SetLicensing("3.4", 2) }, 3, "3.4", "bbp"},
		{"two capacity licenses add up", func(t *smartserver.Devices) { t.SetLicensing("3.4", 1); t.SetLicensing("3.4", 1+2) }, 4, "3.4", "bbbp"},
		{"3.3 needs a license", func(*smartserver.Devices) {}, 2, "3.3", "pp"},
		{"provisioned shows green", func(t *smartserver.Devices) { t.SetLicensing("3.4", 2); t.SetProvisioned("d0", true) }, 3, "3.4", "gbp"},
		{"transfer with devices provisioned", func(t *smartserver.Devices) {
			t.SetLicensing("3.4", 2)
			t.SetProvisioned("d0", true)
			t.SetProvisioned("d1", true)
			t.DeprovisionAll()
			t.SetLicensing("3.4", 0)
		}, 2, "3.4", "pp"},
		{"activation after transfer is blue, not green", func(t *smartserver.Devices) {
			t.SetLicensing("3.4", 2)
			t.SetProvisioned("d0", true)
			t.DeprovisionAll()
			t.SetLicensing("3.4", 0)
			t.SetLicensing("3.4", 2)
		}, 2, "3.4", "bb"},
		{"removing a device frees its slot for the next", func(t *smartserver.Devices) { t.SetLicensing("3.4", 2); t.Remove("d0") }, 3, "3.4", "bb"},
		{"a purple device cannot stay provisioned", func(t *smartserver.Devices) {
			t.SetLicensing("3.2", 0)
			t.SetProvisioned("d1", true)
			t.SetLicensing("3.4", 1) // upgraded to 3.4 with capacity 1
		}, 2, "3.2", "bp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := table(tt.ver, tt.n)
			tt.run(tab)
			if got := colours(tab); got != tt.want {
				t.Fatalf("colours=%s, want %s", got, tt.want)
			}
		})
	}
}

// Ensure the table reports exactly the devices whose state changed.
func TestDevicesChanges(t *testing.T) {
	tab := table("3.4", 3)
	changed := tab.SetLicensing("3.4", 2)
	if len(changed) != 2 || changed[0].ID != "d0" || changed[1].ID != "d1" || changed[0].State != events.Unprovisioned {
		t.Fatalf("changed=%+v, want d0 and d1 turning blue", changed)
	}
	if changed := tab.SetLicensing("3.4", 2); len(changed) != 0 {
		t.Fatalf("changed=%+v, want none for the same capacity", changed)
	}
}

// Ensure Fold, the one colour rule every fold uses, follows the manual from
// events alone, and ignores non-capacity licenses: in a table with names
// (the devices view) and in one that keeps ids only (the handlers).
func TestDevicesFold(t *testing.T) {
	for _, idsOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("idsOnly=", idsOnly), func(t *testing.T) { testDevicesFold(t, idsOnly) })
	}
}

func testDevicesFold(t *testing.T, idsOnly bool) {
	var tab smartserver.Devices
	steps := []struct {
		event events.Data
		want  string
	}{
		{&events.Registered{InstallCode: "IC", Version: "3.4"}, ""},
		{&events.DevicesAdded{InstallCode: "IC", Devices: []events.NewDevice{{DeviceID: "a", Name: "A", Protocol: events.LON}, {DeviceID: "b"}, {DeviceID: "c"}}}, "ppp"},
		{&events.LicenseActivated{InstallCode: "IC", LicenseID: "m", Kind: events.Maintenance, Devices: 3}, "ppp"},
		{&events.LicenseActivated{InstallCode: "IC", LicenseID: "c1", Kind: events.Capacity, Devices: 2}, "bbp"},
		{&events.DevicesProvisioned{InstallCode: "IC", DeviceIDs: []string{"a", "b"}}, "ggp"},
		{&events.LicensesTransferred{InstallCode: "IC", LicenseIDs: []string{"m", "c1"}}, "ppp"},
		{&events.LicenseActivated{InstallCode: "IC", LicenseID: "c2", Kind: events.Capacity, Devices: 3}, "bbb"},
		{&events.DeviceProvisioned{InstallCode: "IC", DeviceID: "c"}, "bbg"},
		{&events.DeviceRemoved{InstallCode: "IC", DeviceID: "a"}, "bg"},
	}
	for i, st := range steps {
		tab.Fold(st.event, idsOnly)
		if got := colours(&tab); got != st.want {
			t.Fatalf("step %d (%T): colours=%q, want %q", i, st.event, got, st.want)
		}
		// A table with names keeps them; one of ids only keeps none.
		if i == 1 {
			want := "A"
			if idsOnly {
				want = ""
			}
			if d := tab.At(0); d.ID != "a" || d.Name != want {
				t.Fatalf("device 0 = %+v, want a named %q", d, want)
			}
		}
	}
}
