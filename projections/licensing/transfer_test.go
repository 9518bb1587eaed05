package licensing

import (
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
)

// A transfer, step by step: the SmartServer's Manage Licenses shows the
// license transferring from the request until the SmartServer completes
// the transfer, also once the cloud has released it (the inventory then
// has it in the cloud); after licenses_transferred the dialog is empty.
func TestTransferInTheDialog(t *testing.T) {
	const (
		cust = "1d5e3c8a-9b2f-4e6d-8a7c-0f1e2d3c4b5a"
		lic  = "2e6f4d9b-0c3a-4f7e-9b8d-1a2b3c4d5e6f"
	)
	at := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	steps := []events.Data{
		&events.Registered{InstallCode: "IC-1", Name: "SC-01", Version: "3.4"},
		&events.LicenseAdded{LicenseID: lic, CustomerID: cust, Kind: events.Capacity, Devices: 5, AddedAt: at},
		&events.LicenseBound{LicenseID: lic, CustomerID: cust, InstallCode: "IC-1", Kind: events.Capacity, Devices: 5, BoundAt: at},
		&events.LicenseActivated{InstallCode: "IC-1", LicenseID: lic, Kind: events.Capacity, Devices: 5, ActivatedAt: at},
		&events.TransferRequested{InstallCode: "IC-1", LicenseIDs: []string{lic}},
		&events.LicenseReleased{LicenseID: lic, InstallCode: "IC-1", TransferredAt: at.Add(time.Minute)},
		&events.LicensesTransferred{InstallCode: "IC-1", LicenseIDs: []string{lic}, TransferredAt: at.Add(time.Minute)},
	}
	tests := []struct {
		name      string
		after     int    // events applied
		dialog    string // the license's state in the dialog, "" for not there
		inventory string
	}{
		{"activated", 4, StateActive, StateActive},
		{"transfer requested", 5, StateTransferring, StateTransferring},
		{"released by the cloud", 6, StateTransferring, StateCloud},
		{"transfer completed", 7, "", StateCloud},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(func() time.Time { return at })
			for i, d := range steps[:tt.after] {
				m.Apply(uint64(i+1), &events.Message{Data: d})
			}
			rows, err := m.ManageLicenses("IC-1")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(rows) > 1 {
				t.Fatalf("Manage Licenses %+v, want one row at most", rows)
			}
			if len(rows) == 1 {
				got = rows[0].State
				if rows[0].LicenseID != lic || rows[0].InstallCode != "IC-1" || rows[0].SegmentController != "SC-01" {
					t.Fatalf("row %+v, want license %s on IC-1 (SC-01)", rows[0], lic)
				}
			}
			if got != tt.dialog {
				t.Fatalf("after %d events the dialog shows %q, want %q", tt.after, got, tt.dialog)
			}
			inv := m.Licenses(LicenseFilter{})
			if len(inv) != 1 || inv[0].State != tt.inventory {
				t.Fatalf("inventory %+v, want the license %s", inv, tt.inventory)
			}
		})
	}
}
