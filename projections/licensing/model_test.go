package licensing

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
)

// Changes names every entry the events since the last Changes touched,
// each with its value as it stands now, and then starts afresh.
func TestChanges(t *testing.T) {
	const (
		cust = "1d5e3c8a-9b2f-4e6d-8a7c-0f1e2d3c4b5a"
		lic  = "2e6f4d9b-0c3a-4f7e-9b8d-1a2b3c4d5e6f"
	)
	at := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		events []events.Data
		want   map[string]string // key → a member its value must have
	}{
		{"nothing", nil, map[string]string{}},
		{"a customer", []events.Data{&events.CustomerCreated{CustomerID: cust, Name: "Acme"}},
			map[string]string{"customer." + cust: `"name":"Acme"`}},
		{"a customer created twice: the later one", []events.Data{&events.CustomerCreated{CustomerID: cust, Name: "Acme"},
			&events.CustomerCreated{CustomerID: cust, Name: "Acme 2"}},
			map[string]string{"customer." + cust: `"name":"Acme 2"`}},
		{"a SmartServer changed twice", []events.Data{&events.Registered{InstallCode: "IC-1", Name: "SC", Version: "3.4"},
			&events.CustomerIDSet{InstallCode: "IC-1", CustomerID: cust}},
			map[string]string{"smartserver.IC-1": `"customer_id":"` + cust + `"`}},
		{"a license activated: license and nothing else", []events.Data{
			&events.LicenseAdded{LicenseID: lic, CustomerID: cust, Kind: events.Capacity, Devices: 5, AddedAt: at},
			&events.LicenseBound{LicenseID: lic, CustomerID: cust, InstallCode: "IC-1", Kind: events.Capacity, Devices: 5, BoundAt: at},
			&events.LicenseActivated{InstallCode: "IC-1", LicenseID: lic, Kind: events.Capacity, Devices: 5, ActivatedAt: at}},
			map[string]string{"license." + lic: `"state":"active"`}},
		{"an event for an unknown SmartServer changes nothing", []events.Data{&events.CustomerIDSet{InstallCode: "IC-9", CustomerID: cust}},
			map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(func() time.Time { return at })
			for i, d := range tt.events {
				m.Apply(uint64(i+1), &events.Message{Data: d})
			}
			got := m.Changes()
			keys := func(mp map[string][]byte) []string {
				var ks []string
				for k := range mp {
					ks = append(ks, k)
				}
				slices.Sort(ks)
				return ks
			}
			var want []string
			for k := range tt.want {
				want = append(want, k)
			}
			slices.Sort(want)
			if !slices.Equal(keys(got), want) {
				t.Fatalf("changed %v, want %v", keys(got), want)
			}
			for k, member := range tt.want {
				if !json.Valid(got[k]) || !strings.Contains(string(got[k]), member) {
					t.Errorf("%s = %s, want it with %s", k, got[k], member)
				}
			}
			if again := m.Changes(); len(again) != 0 {
				t.Errorf("second Changes %v, want none", keys(again))
			}
		})
	}
}
