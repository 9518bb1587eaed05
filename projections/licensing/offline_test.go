package licensing

import (
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
)

// Ensure the views of the offline path and of a refused binding: a license
// fulfilled for a SmartServer is in the inventory but not in its Manage
// Licenses until imported, then active with its activation date; a
// binding the SmartServer refused leaves the dialog and says why.
func TestOfflineAndRefusedBindings(t *testing.T) {
	const (
		cust = "1d5e3c8a-9b2f-4e6d-8a7c-0f1e2d3c4b5a"
		lic  = "2e6f4d9b-0c3a-4f7e-9b8d-1a2b3c4d5e6f"
	)
	at := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	added := &events.LicenseAdded{LicenseID: lic, CustomerID: cust, Kind: events.Capacity, Devices: 5, AddedAt: at}
	bound := func(offline bool) *events.LicenseBound {
		return &events.LicenseBound{LicenseID: lic, CustomerID: cust, InstallCode: "IC-1", Kind: events.Capacity, Devices: 5, BoundAt: at, Offline: offline}
	}
	tests := []struct {
		name        string
		events      []events.Data
		state       string
		inDialog    bool
		activatedAt time.Time
	}{
		{"fulfilled: not on the SmartServer yet", []events.Data{added, bound(true)}, StateFulfilled, false, time.Time{}},
		{"imported: active", []events.Data{added, bound(true), &events.LicensesImported{InstallCode: "IC-1", LicenseIDs: []string{lic},
			Licenses: []events.Imported{{LicenseID: lic, Kind: events.Capacity, Devices: 5, ActivatedAt: at}}}}, StateActive, true, at},
		{"a binding refused by the SmartServer", []events.Data{added, bound(false), &events.Rejected{CommandType: string(events.LicenseBoundType),
			Reason: events.ReasonBadSignature, Aggregate: "smartserver", ID: "IC-1", InstallCode: "IC-1", LicenseID: lic}}, StateRefused, false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(func() time.Time { return at })
			m.Apply(1, &events.Message{Data: &events.Registered{InstallCode: "IC-1", Version: "3.4"}})
			for i, d := range tt.events {
				m.Apply(uint64(i+2), &events.Message{Data: d})
			}
			rows := m.Licenses(LicenseFilter{})
			if len(rows) != 1 || rows[0].State != tt.state {
				t.Fatalf("inventory %+v, want one license %s", rows, tt.state)
			}
			dialog, err := m.ManageLicenses("IC-1")
			if err != nil {
				t.Fatal(err)
			}
			if (len(dialog) == 1) != tt.inDialog {
				t.Fatalf("Manage Licenses %+v, want the license there: %v", dialog, tt.inDialog)
			}
			if tt.inDialog && dialog[0].ActivationDate != date(tt.activatedAt) {
				t.Fatalf("activation date %q, want %q", dialog[0].ActivationDate, date(tt.activatedAt))
			}
			if tt.state == StateRefused && rows[0].Note == "" {
				t.Fatal("a refused binding without a note saying why")
			}
		})
	}
}
