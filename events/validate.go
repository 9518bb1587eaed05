package events

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ValidUUID reports whether s is a UUID in its canonical 36-character form.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// ValidInstallCode reports whether s can be an install code: 1-64 of
// [A-Za-z0-9_-], so it is always one NATS subject token. Written out rather
// than a regexp, which was a tenth of decoding.
func ValidInstallCode(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkUUID(field, v string) error {
	if v == "" {
		return Reject(ReasonInvalidData, "%s is required", field)
	}
	if !ValidUUID(v) {
		return Reject(ReasonBadUUID, "%s %q is not a UUID", field, v)
	}
	return nil
}

func checkOptionalUUID(field, v string) error {
	if v == "" {
		return nil
	}
	return checkUUID(field, v)
}

func checkInstallCode(v string) error {
	if v == "" {
		return Reject(ReasonInvalidData, "install_code is required")
	}
	if !ValidInstallCode(v) {
		return Reject(ReasonBadInstallCode, "install code %q must be 1-64 letters, digits, '-' or '_'", v)
	}
	return nil
}

// ParseVersion reads "major.minor[.patch]" firmware versions.
func ParseVersion(v string) (major, minor int, ok bool) {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, false
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		nums[i] = n
	}
	return nums[0], nums[1], true
}

// NeedsLicense reports whether a SmartServer of firmware version v needs a
// license: license management applies to 3.3 and higher.
func NeedsLicense(v string) bool {
	major, minor, ok := ParseVersion(v)
	if !ok {
		return true
	}
	return major > 3 || (major == 3 && minor >= 3)
}

// ParseDate reads a YYYY-MM-DD date.
func ParseDate(s string) (time.Time, error) { return time.Parse(time.DateOnly, s) }

// Validate implements Data.
func (d *CreateCustomer) Validate() error {
	if err := checkOptionalUUID("customer_id", d.CustomerID); err != nil {
		return err
	}
	if strings.TrimSpace(d.Name) == "" {
		return Reject(ReasonInvalidData, "name is required")
	}
	return nil
}

// Validate implements Data.
func (d *AddLicense) Validate() error {
	if err := checkOptionalUUID("license_id", d.LicenseID); err != nil {
		return err
	}
	if err := checkUUID("customer_id", d.CustomerID); err != nil {
		return err
	}
	if d.Devices <= 0 {
		return Reject(ReasonInvalidData, "devices must be positive, got %d", d.Devices)
	}
	switch d.Kind {
	case Capacity:
		if d.Expires != "" {
			return Reject(ReasonInvalidData, "a capacity license has no expiry date")
		}
	case Maintenance:
		if d.Expires == "" {
			return Reject(ReasonInvalidData, "a maintenance license needs expires (YYYY-MM-DD)")
		}
		if _, err := ParseDate(d.Expires); err != nil {
			return Reject(ReasonInvalidData, "expires %q is not a YYYY-MM-DD date", d.Expires)
		}
	default:
		return Reject(ReasonInvalidData, "kind must be %q or %q, got %q", Capacity, Maintenance, d.Kind)
	}
	return nil
}

// Validate implements Data.
func (d *Register) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	if _, _, ok := ParseVersion(d.Version); !ok {
		return Reject(ReasonInvalidData, "version %q is not major.minor", d.Version)
	}
	return nil
}

// Validate implements Data.
func (d *SetVersion) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	if _, _, ok := ParseVersion(d.Version); !ok {
		return Reject(ReasonInvalidData, "version %q is not major.minor", d.Version)
	}
	return nil
}

// Validate implements Data.
func (d *VersionSet) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *SetCustomerID) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	return checkUUID("customer_id", d.CustomerID)
}

// Validate implements Data.
func (d *DownloadLicenses) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *ActivateLicense) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	return checkUUID("license_id", d.LicenseID)
}

// Validate implements Data.
func (d *TransferToCloud) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *CustomerCreated) Validate() error { return checkUUID("customer_id", d.CustomerID) }

// Validate implements Data.
func (d *LicenseAdded) Validate() error {
	if err := checkUUID("license_id", d.LicenseID); err != nil {
		return err
	}
	return checkUUID("customer_id", d.CustomerID)
}

// Validate implements Data.
func (d *LicenseBound) Validate() error {
	if err := checkUUID("license_id", d.LicenseID); err != nil {
		return err
	}
	return checkInstallCode(d.InstallCode)
}

// Validate implements Data.
func (d *LicenseReleased) Validate() error {
	if err := checkUUID("license_id", d.LicenseID); err != nil {
		return err
	}
	return checkInstallCode(d.InstallCode)
}

// Validate implements Data.
func (d *Registered) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *CustomerIDSet) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	return checkUUID("customer_id", d.CustomerID)
}

// Validate implements Data.
func (d *LicensesDownloaded) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *ActivationRequested) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	return checkUUID("license_id", d.LicenseID)
}

// Validate implements Data.
func (d *LicenseActivated) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	return checkUUID("license_id", d.LicenseID)
}

// Validate implements Data.
func (d *TransferRequested) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *LicensesTransferred) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *Rejected) Validate() error {
	if d.Reason == "" {
		return Reject(ReasonInvalidData, "reason is required")
	}
	return nil
}

// Key implements Data: the id of the aggregate the value belongs to.
func (d *CreateCustomer) Key() string      { return d.CustomerID }
func (d *AddLicense) Key() string          { return d.LicenseID }
func (d *Register) Key() string            { return d.InstallCode }
func (d *SetVersion) Key() string          { return d.InstallCode }
func (d *VersionSet) Key() string          { return d.InstallCode }
func (d *SetCustomerID) Key() string       { return d.InstallCode }
func (d *DownloadLicenses) Key() string    { return d.InstallCode }
func (d *ActivateLicense) Key() string     { return d.InstallCode }
func (d *TransferToCloud) Key() string     { return d.InstallCode }
func (d *CustomerCreated) Key() string     { return d.CustomerID }
func (d *LicenseAdded) Key() string        { return d.LicenseID }
func (d *LicenseBound) Key() string        { return d.LicenseID }
func (d *LicenseReleased) Key() string     { return d.LicenseID }
func (d *Registered) Key() string          { return d.InstallCode }
func (d *CustomerIDSet) Key() string       { return d.InstallCode }
func (d *LicensesDownloaded) Key() string  { return d.InstallCode }
func (d *ActivationRequested) Key() string { return d.InstallCode }
func (d *LicenseActivated) Key() string    { return d.InstallCode }
func (d *TransferRequested) Key() string   { return d.InstallCode }
func (d *LicensesTransferred) Key() string { return d.InstallCode }
func (d *Rejected) Key() string            { return d.ID }

// RejectionFields name what a rejected command was about, for the Rejected
// event: install code, license id and customer id (any may be empty).
func (d *SetCustomerID) RejectionFields() (string, string, string) {
	return d.InstallCode, "", d.CustomerID
}

// RejectionFields implements the rejection field hook.
func (d *ActivateLicense) RejectionFields() (string, string, string) {
	return d.InstallCode, d.LicenseID, ""
}

// RejectionFields implements the rejection field hook.
func (d *ActivationRequested) RejectionFields() (string, string, string) {
	return d.InstallCode, d.LicenseID, d.CustomerID
}

// RejectionFields implements the rejection field hook.
func (d *AddLicense) RejectionFields() (string, string, string) {
	return "", d.LicenseID, d.CustomerID
}

// RejectionFields implements the rejection field hook.
func (d *TransferToCloud) RejectionFields() (string, string, string) { return d.InstallCode, "", "" }

// RejectionFields implements the rejection field hook.
func (d *DownloadLicenses) RejectionFields() (string, string, string) { return d.InstallCode, "", "" }

// RejectionFields implements the rejection field hook.
func (d *Register) RejectionFields() (string, string, string)   { return d.InstallCode, "", "" }
func (d *SetVersion) RejectionFields() (string, string, string) { return d.InstallCode, "", "" }
