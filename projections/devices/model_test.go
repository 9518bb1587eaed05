package devices

import (
	"encoding/json"
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
