package events

import (
	"time"

	"github.com/licensebus/licensebus/events/grant"
)

// Data is the payload of a command or event. Validate reports the first
// problem as a *Rejection with ReasonInvalidData, ReasonBadUUID or
// ReasonBadInstallCode; Key is the id of the aggregate it belongs to.
type Data interface {
	Validate() error
	Key() string
}

// License kinds.
const (
	Capacity    = "capacity"
	Maintenance = "maintenance"
)

// CreateCustomer asks the cloud to add a customer/project account. CustomerID
// may be left empty: the cloud then derives it from the command id, so a
// repeated command creates the same customer.
type CreateCustomer struct {
	CustomerID string `json:"customer_id,omitempty"`
	Name       string `json:"name"`
}

// AddLicense asks the cloud to add a purchased license to a customer's
// inventory. LicenseID may be empty, as for CreateCustomer. Expires
// (YYYY-MM-DD) is required for maintenance licenses and refused otherwise.
type AddLicense struct {
	LicenseID  string `json:"license_id,omitempty"`
	CustomerID string `json:"customer_id"`
	Kind       string `json:"kind"`
	Devices    int    `json:"devices"`
	Expires    string `json:"expires,omitempty"`
}

// Register announces a SmartServer to licensebus with its read-only install
// code, its segment controller name and its firmware version ("3.4").
type Register struct {
	InstallCode string `json:"install_code"`
	Name        string `json:"name"`
	Version     string `json:"version"`
}

// SetVersion records a SmartServer's new firmware version (after an
// upgrade or a downgrade). Below 3.3 no license is needed, so going there
// is refused while licenses are active on it.
type SetVersion struct {
	InstallCode string `json:"install_code"`
	Version     string `json:"version"`
}

// SetCustomerID is the Save button of the Manage Customer Accounts view.
type SetCustomerID struct {
	InstallCode string `json:"install_code"`
	CustomerID  string `json:"customer_id"`
}

// DownloadLicenses is the Download Licenses from the Cloud button.
type DownloadLicenses struct {
	InstallCode string `json:"install_code"`
}

// ActivateLicense asks to activate one license on a SmartServer.
type ActivateLicense struct {
	InstallCode string `json:"install_code"`
	LicenseID   string `json:"license_id"`
}

// TransferToCloud asks to give every license of a SmartServer back to the
// cloud (after the confirmation dialog).
type TransferToCloud struct {
	InstallCode string `json:"install_code"`
}

// CustomerCreated: a customer/project account exists.
type CustomerCreated struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
}

// LicenseAdded: a license is in the cloud, available to its customer.
type LicenseAdded struct {
	LicenseID  string    `json:"license_id"`
	CustomerID string    `json:"customer_id"`
	Kind       string    `json:"kind"`
	Devices    int       `json:"devices"`
	Expires    string    `json:"expires,omitempty"`
	AddedAt    time.Time `json:"added_at"`
}

// LicenseBound: the cloud bound the license to one SmartServer. It carries
// the license terms so the device side needs no cloud lookup, and the
// grant: the same terms signed with the cloud's key, which the device side
// verifies before it activates anything (bindings written before grants
// existed have none; docs/consumers.md says how they are treated).
type LicenseBound struct {
	LicenseID   string    `json:"license_id"`
	CustomerID  string    `json:"customer_id"`
	InstallCode string    `json:"install_code"`
	Kind        string    `json:"kind"`
	Devices     int       `json:"devices"`
	Expires     string    `json:"expires,omitempty"`
	BoundAt     time.Time `json:"bound_at"`
	// Offline marks a binding made by a fulfil (the portal): the
	// SmartServer activates it when it imports the license file, not on
	// this event.
	Offline bool         `json:"offline,omitempty"`
	Grant   *grant.Grant `json:"grant,omitempty"`
}

// LicenseReleased: the license went back to the cloud from a SmartServer.
type LicenseReleased struct {
	LicenseID     string    `json:"license_id"`
	InstallCode   string    `json:"install_code"`
	TransferredAt time.Time `json:"transferred_at"`
}

// Registered: a SmartServer is known.
type Registered struct {
	InstallCode string `json:"install_code"`
	Name        string `json:"name"`
	Version     string `json:"version"`
}

// VersionSet: the SmartServer runs another firmware version.
type VersionSet struct {
	InstallCode string `json:"install_code"`
	Version     string `json:"version"`
	Previous    string `json:"previous,omitempty"`
}

// CustomerIDSet: the SmartServer's Customer ID setting changed.
type CustomerIDSet struct {
	InstallCode string `json:"install_code"`
	CustomerID  string `json:"customer_id"`
	Previous    string `json:"previous,omitempty"`
}

// LicensesDownloaded: the SmartServer fetched the licenses available to its
// customer; from now on its download list follows the cloud inventory.
type LicensesDownloaded struct {
	InstallCode string `json:"install_code"`
	CustomerID  string `json:"customer_id"`
}

// ActivationRequested: the SmartServer asked the cloud to bind a license.
type ActivationRequested struct {
	InstallCode string `json:"install_code"`
	LicenseID   string `json:"license_id"`
	CustomerID  string `json:"customer_id"`
}

// LicenseActivated: the license is active on the SmartServer.
type LicenseActivated struct {
	InstallCode string    `json:"install_code"`
	LicenseID   string    `json:"license_id"`
	Kind        string    `json:"kind"`
	Devices     int       `json:"devices"`
	Expires     string    `json:"expires,omitempty"`
	ActivatedAt time.Time `json:"activated_at"`
}

// TransferRequested: the SmartServer gives LicenseIDs back to the cloud.
type TransferRequested struct {
	InstallCode string   `json:"install_code"`
	LicenseIDs  []string `json:"license_ids"`
}

// LicensesTransferred: every license of the transfer is back in the cloud.
type LicensesTransferred struct {
	InstallCode   string    `json:"install_code"`
	LicenseIDs    []string  `json:"license_ids"`
	TransferredAt time.Time `json:"transferred_at"`
}

// Rejected says why a command (or a message that was not one) had no
// effect. Aggregate and ID name what the command targeted, when they could be
// read from it.
type Rejected struct {
	CommandID   string `json:"command_id,omitempty"`
	CommandType string `json:"command_type,omitempty"`
	Reason      Reason `json:"reason"`
	Message     string `json:"message"`
	Aggregate   string `json:"aggregate,omitempty"`
	ID          string `json:"id,omitempty"`
	InstallCode string `json:"install_code,omitempty"`
	LicenseID   string `json:"license_id,omitempty"`
	CustomerID  string `json:"customer_id,omitempty"`
}
