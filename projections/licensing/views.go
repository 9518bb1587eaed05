package licensing

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/licensebus/licensebus/events"
)

// Errors of the queries.
var (
	ErrUnknownServer   = errors.New("unknown SmartServer")
	ErrUnknownLicense  = errors.New("unknown license")
	ErrNotDownloaded   = errors.New("licenses not downloaded")
	ErrUnknownCustomer = errors.New("unknown customer")
)

// AccountRow is one row of the Manage Customer Accounts view.
type AccountRow struct {
	SegmentController string `json:"segment_controller"`
	InstallCode       string `json:"install_code"`
	CustomerID        string `json:"customer_id"`
	CustomerName      string `json:"customer_name,omitempty"`
	Version           string `json:"version"`
}

// LicenseRow is one license as the views show it. Dates are YYYY-MM-DD.
type LicenseRow struct {
	SegmentController string `json:"segment_controller,omitempty"`
	InstallCode       string `json:"install_code"`
	LicenseID         string `json:"license_id"`
	CustomerID        string `json:"customer_id"`
	Kind              string `json:"kind"`
	Devices           int    `json:"devices"`
	Expires           string `json:"expires,omitempty"`
	Description       string `json:"description"`
	State             string `json:"state"`
	Status            string `json:"status"`
	ActivationDate    string `json:"activation_date"`
	TransferDate      string `json:"transfer_date"`
	Note              string `json:"note"`
}

// Status derives the manual's Status column for a license on day today:
// Active, Expiring YYYY-MM-DD (within 60 days) or Expired YYYY-MM-DD for
// maintenance licenses; Active for capacity.
func Status(kind, expires string, today time.Time) string {
	if kind != events.Maintenance || expires == "" {
		return "Active"
	}
	exp, err := events.ParseDate(expires)
	if err != nil {
		return "Active"
	}
	day := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	switch {
	case day.After(exp):
		return "Expired " + expires
	case !day.Before(exp.AddDate(0, 0, -60)):
		return "Expiring " + expires
	}
	return "Active"
}

// Description is the manual's Description column.
func Description(kind string, devices int, expires string) string {
	n := fmt.Sprintf("%d devices", devices)
	if devices == 1 {
		n = "1 device"
	}
	if kind == events.Maintenance {
		return fmt.Sprintf("Maintenance, %s, expires %s", n, expires)
	}
	return "Device capacity, " + n
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// row renders l; the caller holds the lock.
func (m *Model) row(l *License, viewer string, today time.Time) LicenseRow {
	r := LicenseRow{
		InstallCode: l.InstallCode, LicenseID: l.LicenseID, CustomerID: l.CustomerID, Kind: l.Kind, Devices: l.Devices,
		Expires: l.Expires, Description: Description(l.Kind, l.Devices, l.Expires), State: l.State,
		ActivationDate: date(l.ActivatedAt), TransferDate: date(l.TransferredAt),
	}
	switch l.State {
	case StateActive:
		r.Status = Status(l.Kind, l.Expires, today)
	case StateCloud:
		r.Status = "In cloud"
	case StateActivating:
		r.Status, r.Note = "Activating", "bound in the cloud, activating on the SmartServer"
	case StateTransferring:
		r.Status, r.Note = "Transferring", "transfer to the cloud in progress"
	case StateFulfilled:
		r.Status, r.Note = "Fulfilled", "bound by the portal; import its license file on the SmartServer"
	case StateRefused:
		r.Status, r.Note = "Binding refused", l.Note
	}
	if viewer != "" {
		r.InstallCode = viewer
	}
	if s := m.servers[r.InstallCode]; s != nil {
		r.SegmentController = s.Name
	}
	return r
}

// Accounts is the Manage Customer Accounts view: every SmartServer.
func (m *Model) Accounts() []AccountRow {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]AccountRow, 0, len(m.servers))
	for _, s := range m.servers {
		r := AccountRow{SegmentController: s.Name, InstallCode: s.InstallCode, CustomerID: s.CustomerID, Version: s.Version}
		if c := m.customers[s.CustomerID]; c != nil {
			r.CustomerName = c.Name
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b AccountRow) int { return cmp.Compare(a.InstallCode, b.InstallCode) })
	return out
}

// Downloads is the Download Licenses from Cloud view of SmartServer ic: the
// licenses of its customer that are in the cloud. It is ErrNotDownloaded
// until the SmartServer downloaded licenses for its current Customer ID.
func (m *Model) Downloads(ic string) ([]LicenseRow, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.servers[ic]
	if s == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownServer, ic)
	}
	if s.CustomerID == "" || s.DownloadedFor != s.CustomerID {
		return nil, fmt.Errorf("%w: SmartServer %s has not downloaded the licenses of its Customer ID", ErrNotDownloaded, ic)
	}
	today := m.now()
	out := []LicenseRow{}
	for lid := range m.byCustomer[s.CustomerID] {
		if l := m.licenses[lid]; l.State == StateCloud {
			out = append(out, m.row(l, ic, today))
		}
	}
	slices.SortFunc(out, func(a, b LicenseRow) int {
		return cmp.Or(cmp.Compare(a.TransferDate, b.TransferDate), cmp.Compare(a.LicenseID, b.LicenseID))
	})
	return out, nil
}

// ManageLicenses is the Manage Licenses view of SmartServer ic: its
// licenses that are active or on their way in or out.
func (m *Model) ManageLicenses(ic string) ([]LicenseRow, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.servers[ic] == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownServer, ic)
	}
	today := m.now()
	out := []LicenseRow{}
	on := m.byServer[ic]
	for lid := range on.All() {
		// A fulfilled license is not on the SmartServer until it imports
		// the file: the cloud's inventory shows it, the dialog does not.
		if l := m.licenses[lid]; l.State != StateFulfilled {
			out = append(out, m.row(l, "", today))
		}
	}
	// Released by the cloud, still on the SmartServer until it completes
	// the transfer: the dialog shows what the SmartServer holds.
	for _, lid := range m.servers[ic].Transferring {
		if on.Has(lid) {
			continue
		}
		if l := m.licenses[lid]; l != nil {
			r := m.row(l, ic, today)
			r.State, r.Status, r.Note = StateTransferring, "Transferring", "released in the cloud; the SmartServer completes the transfer"
			r.ActivationDate, r.TransferDate = "", ""
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b LicenseRow) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ActivationDate, b.ActivationDate), cmp.Compare(a.LicenseID, b.LicenseID))
	})
	return out, nil
}

// LicenseFilter narrows Licenses; empty fields match everything.
type LicenseFilter struct {
	CustomerID  string
	InstallCode string
	State       string
}

// Licenses is the license inventory.
func (m *Model) Licenses(f LicenseFilter) []LicenseRow {
	m.mu.RLock()
	defer m.mu.RUnlock()
	today := m.now()
	out := []LicenseRow{}
	for _, l := range m.licenses {
		if (f.CustomerID != "" && l.CustomerID != f.CustomerID) || (f.InstallCode != "" && l.InstallCode != f.InstallCode) ||
			(f.State != "" && l.State != f.State) {
			continue
		}
		out = append(out, m.row(l, "", today))
	}
	slices.SortFunc(out, func(a, b LicenseRow) int {
		return cmp.Or(cmp.Compare(a.CustomerID, b.CustomerID), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.LicenseID, b.LicenseID))
	})
	return out
}

// Customers lists the customer accounts by name.
func (m *Model) Customers() []Customer {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Customer, 0, len(m.customers))
	for _, c := range m.customers {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Customer) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.CustomerID, b.CustomerID))
	})
	return out
}
