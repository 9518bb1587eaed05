package audit

import (
	"testing"
	"time"
)

// Ensure each condition of a Filter selects what it says, and that all of
// them must hold.
func TestFilter(t *testing.T) {
	e := &Entry{Kind: KindEvent, Type: "io.licensebus.smartserver.license_activated", LicenseIDs: []string{"L1", "L2"},
		InstallCode: "IC-1", CustomerID: "C1", StreamTime: "2026-01-02T03:04:05Z"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"no condition", Filter{}, true},
		{"license among several", Filter{LicenseID: "L2"}, true},
		{"another license", Filter{LicenseID: "L3"}, false},
		{"SmartServer", Filter{InstallCode: "IC-1"}, true},
		{"another SmartServer", Filter{InstallCode: "IC-2"}, false},
		{"customer", Filter{CustomerID: "C2"}, false},
		{"whole type", Filter{Types: []string{"io.licensebus.smartserver.license_activated"}}, true},
		{"type tail", Filter{Types: []string{"x", "smartserver.license_activated"}}, true},
		{"not a tail at a dot", Filter{Types: []string{"activated"}}, false},
		{"kind", Filter{Kinds: []Kind{KindCommand, KindEvent}}, true},
		{"another kind", Filter{Kinds: []Kind{KindRejection}}, false},
		{"stored at since", Filter{Since: at}, true},
		{"stored before since", Filter{Since: at.Add(time.Nanosecond)}, false},
		{"all must hold", Filter{InstallCode: "IC-1", CustomerID: "C2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(e); got != tt.want {
				t.Fatalf("Match=%v, want %v", got, tt.want)
			}
		})
	}
}
