package devices

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/licensebus/licensebus/events"
)

// Ensure a SmartServer restored from entries stored at different moments
// (a crash in the middle of a flush) gets the counts its devices say, in
// its entry and in the fleet totals, and that the corrected entry is
// written; a consistent one is left alone.
func TestRestoredRecountsDevices(t *testing.T) {
	tests := []struct {
		name     string
		stored   Counts // in the server's own entry
		want     Counts
		rewrites bool
	}{
		{"server entry older than its devices'", Counts{Blue: 2, Total: 2}, Counts{Blue: 1, Green: 1, Total: 2}, true},
		{"consistent", Counts{Blue: 1, Green: 1, Total: 2}, Counts{Blue: 1, Green: 1, Total: 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			entry := func(key string, v any) {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Restore(key, b); err != nil {
					t.Fatal(err)
				}
			}
			entry("server.IC-1", Server{InstallCode: "IC-1", Version: "3.4", Capacity: 2, Licensed: 2, Counts: tt.stored})
			entry("devices.IC-1", []Row{
				{DeviceID: "d1", InstallCode: "IC-1", Protocol: "bacnet", State: events.Provisioned, Colour: "green", Provisioned: true, Order: 1},
				{DeviceID: "d2", InstallCode: "IC-1", Protocol: "bacnet", State: events.Unprovisioned, Colour: "blue", Order: 2},
			})
			m.Changes() // as the runner does: restored entries are not changes
			m.Restored()
			if got := m.Totals(); got != tt.want {
				t.Fatalf("fleet totals %+v, want %+v", got, tt.want)
			}
			b, ok := m.Changes()["server.IC-1"]
			if ok != tt.rewrites {
				t.Fatalf("server entry written again: %v, want %v", ok, tt.rewrites)
			}
			if ok {
				var s Server
				if err := json.Unmarshal(b, &s); err != nil {
					t.Fatal(err)
				}
				if s.Counts != tt.want {
					t.Fatalf("server entry counts %+v, want %+v", s.Counts, tt.want)
				}
			}
		})
	}
}

// Changes names a SmartServer's server entry whenever an event touched
// it, its devices entry only when its devices changed, once each however
// many events, and then starts afresh.
func TestChanges(t *testing.T) {
	const dev = "3f7a5e0c-1d4b-4a8f-8c9e-2b3c4d5e6f70"
	reg := &events.Registered{InstallCode: "IC-1", Name: "SC", Version: "3.4"}
	tests := []struct {
		name   string
		events []events.Data
		want   []string
	}{
		{"nothing", nil, nil},
		{"registered", []events.Data{reg}, []string{"server.IC-1"}},
		{"auto-provisioning set", []events.Data{reg, &events.AutoProvisionSet{InstallCode: "IC-1", Enabled: true}}, []string{"server.IC-1"}},
		{"a device added", []events.Data{reg, &events.DeviceAdded{InstallCode: "IC-1", DeviceID: dev, Name: "d", Protocol: events.BACnet}},
			[]string{"devices.IC-1", "server.IC-1"}},
		{"an unknown SmartServer", []events.Data{&events.AutoProvisionSet{InstallCode: "IC-9", Enabled: true}}, nil},
		{"its only device removed", []events.Data{reg, &events.DeviceAdded{InstallCode: "IC-1", DeviceID: dev, Name: "d", Protocol: events.BACnet},
			&events.DeviceRemoved{InstallCode: "IC-1", DeviceID: dev}}, []string{"devices.IC-1", "server.IC-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			for i, d := range tt.events {
				info, _ := events.Lookup(typeOf(t, d))
				m.Apply(uint64(i+1), &events.Message{Info: info, Data: d})
			}
			var got []string
			changes := m.Changes()
			for k := range changes {
				got = append(got, k)
			}
			if v, ok := changes["devices.IC-1"]; ok && v[0] != '[' {
				t.Errorf("devices entry %s, want a JSON array", v)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("changed %v, want %v", got, tt.want)
			}
			if again := m.Changes(); len(again) != 0 {
				t.Fatalf("second Changes has %d entries, want none", len(again))
			}
		})
	}
}

// typeOf finds the CloudEvent type of d.
func typeOf(t *testing.T, d events.Data) events.Type {
	t.Helper()
	for _, typ := range events.Types() {
		if info, _ := events.Lookup(typ); !info.Command && reflect.TypeOf(info.New()) == reflect.TypeOf(d) {
			return typ
		}
	}
	t.Fatalf("no type for %T", d)
	return ""
}

// Ensure each device keeps the order it was added in — its event's
// sequence and its place in the event — through adds (a device the table
// has already is not added twice), removals and a restore from the
// entries written.
func TestOrdersFollowTheDevices(t *testing.T) {
	reg := &events.Registered{InstallCode: "IC-1", Name: "SC", Version: "3.4"}
	nd := func(id string) events.NewDevice {
		return events.NewDevice{DeviceID: id, Name: id, Protocol: events.LON}
	}
	evs := []events.Data{
		reg,
		&events.DevicesAdded{InstallCode: "IC-1", Devices: []events.NewDevice{nd("a"), nd("b"), nd("c")}},
		&events.DeviceAdded{InstallCode: "IC-1", DeviceID: "d", Name: "d", Protocol: events.LON},
		&events.DevicesAdded{InstallCode: "IC-1", Devices: []events.NewDevice{nd("b"), nd("e")}},
		&events.DeviceRemoved{InstallCode: "IC-1", DeviceID: "b"},
	}
	m := New()
	for i, d := range evs {
		info, _ := events.Lookup(typeOf(t, d))
		m.Apply(uint64(i+1), &events.Message{Info: info, Data: d})
	}
	want := map[string]uint64{"a": 2 * orderSpan, "c": 2*orderSpan + 2, "d": 3 * orderSpan, "e": 4*orderSpan + 1}
	check := func(m *Model, when string) {
		t.Helper()
		rows, err := m.Devices("IC-1")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.DeviceID)
			if r.Order != want[r.DeviceID] {
				t.Errorf("%s: device %s order %d, want %d", when, r.DeviceID, r.Order, want[r.DeviceID])
			}
		}
		if !slices.Equal(ids, []string{"a", "c", "d", "e"}) {
			t.Errorf("%s: devices %v, want a c d e", when, ids)
		}
	}
	check(m, "applied")
	back := New()
	for k, v := range m.Changes() {
		if err := back.Restore(k, v); err != nil {
			t.Fatal(err)
		}
	}
	check(back, "restored")
}
